ARG VERSION=1.36
FROM busybox:${VERSION} AS build
RUN echo hello > /greeting
FROM scratch
COPY --from=build /greeting /
CMD ["cat", "/greeting"]
