# Build VM pieces (guest init, kernel). Filled in by the build VM work.
GUEST_FILES :=
guest:
