# Build VM pieces: guest kernel, static guest init + initramfs.
# See pipeline/vm/build-kernel.sh and hypr-guest(7).
VM_B := $(B)/vm
GUEST_SRC := $(wildcard pipeline/vm/*.c)
# lib/sparse.c is shared: the guest writes holes as the host does.
GUEST_INIT_SRC := $(GUEST_SRC) lib/sparse.c lib/path.c
# The guest is static and never built with sanitizers.
GUEST_CFLAGS := -O2 -g0 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wvla \
	-Wstrict-prototypes -Wmissing-prototypes -Ilib -Ipipeline/vm $(if $(filter 1,$(WERROR)),-Werror)
# Only what the tar reader/writer needs; see the comment in guest-diff.c.
GUEST_LIBS := -larchive -lnettle -llzma -lbz2 -lz -lm
GUEST_FILES := $(VM_B)/vmlinux $(VM_B)/hypr-init.cpio

guest: $(VM_B)/hypr-init.cpio

$(VM_B)/hypr-init: $(GUEST_INIT_SRC) pipeline/vm/guest.h lib/vm_proto.h lib/sparse.h lib/path.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -static -o $@.tmp $(GUEST_INIT_SRC) $(GUEST_LIBS)
	mv $@.tmp $@

$(VM_B)/hypr-init.cpio: $(VM_B)/hypr-init
	@rm -rf $(VM_B)/initramfs && mkdir -p $(VM_B)/initramfs/dev
	cp $< $(VM_B)/initramfs/init
	cd $(VM_B)/initramfs && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 > ../hypr-init.cpio.tmp
	mv $@.tmp $@

# The kernel is cached outside the clone (build-kernel.sh), so a fresh
# clone of the same machine only links it.
kernel:
	pipeline/vm/build-kernel.sh $(VM_B)/vmlinux

# Fallback guest kernel: the distribution's, with its modules in the
# initramfs (slower: ~2 s to init, 3-4 s to ready). See hypr-guest(7).
DISTRO_KVER ?= $(shell uname -r)
distro-kernel: $(VM_B)/hypr-init.cpio
	pipeline/vm/distro-kernel.sh "$${HYPR_DISTRO_VMLINUZ:-/boot/vmlinuz-$(DISTRO_KVER)}" \
		"$${HYPR_DISTRO_MODULES:-/lib/modules/$(DISTRO_KVER)}" $(VM_B)/hypr-init.cpio $(VM_B)/distro

$(B)/lib/vm.o: override CFLAGS += -DHYPR_LIBEXECDIR='"$(LIBEXECDIR)"'

check: kernel guest
install: kernel

.PHONY: kernel distro-kernel
