# syntax=docker/dockerfile:1
# check=error=true
ARG ALPINE=3.19
ARG BASE=busybox:${ALPINE}
FROM --platform=$TARGETPLATFORM ${BASE} AS build
ARG ALPINE
ENV GREETING="hello world" \
    TARGET=$TARGETARCH
# a comment inside the stage
RUN --mount=type=bind,target=/src \
    --network=none \
    echo "$GREETING" > /out && \
    # a comment inside a continuation
    cat /src/x >> /out
COPY --chown=1:1 --chmod=0644 <<EOF /etc/motd
welcome to $GREETING
EOF
RUN <<-'SCRIPT' sh
	set -e
	echo "not expanded: $HOME"
	SCRIPT

FROM build AS test
RUN ["/bin/true"]

from scratch
copy --from=build /out /out
LABEL org.example.a=1 "org.example.b"="two words"
EXPOSE 80/tcp 443
VOLUME ["/data", "/logs"]
ONBUILD RUN echo child
HEALTHCHECK --interval=5s CMD ["/out", "--check"]
USER 1000:1000
WORKDIR /srv
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-euc"]
ENTRYPOINT ["/out"]
CMD serve --port 80
