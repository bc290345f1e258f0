"""Writes a FileDescriptorSet of the protobuf well-known types to argv[1].

Debian's protobuf-compiler ships protoc without google/protobuf/*.proto (those
come with libprotobuf-dev, C++ headers and all). protoc reads imports it cannot
find on its include path from --descriptor_set_in, so the descriptors that
python3-protobuf itself is built from stand in for them: the generated stubs
then match the runtime they are imported into.
"""

import sys

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)

MODULES = (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)


def main(out_path):
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    for module in MODULES:
        descriptor_set.file.add().MergeFromString(module.DESCRIPTOR.serialized_pb)
    with open(out_path, "wb") as f:
        f.write(descriptor_set.SerializeToString())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
