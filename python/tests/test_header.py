"""The ctypes mirrors of include/sieve.h's structs name the header's fields,
in its order: a field added in C and not here would have libsieve write
past the Python-side struct."""
import os
import re

import pytest

from sieve import _lib
from sieve.parallel import _parts

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "sieve.h")


def header_fields(name):
    src = open(HEADER).read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), src, re.S).group(1)
    fields = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        decl = re.sub(r"\[\d+\]", "", decl)
        # "const int32_t *full_ptr, *full_idx" -> full_ptr, full_idx
        names = [n.strip().lstrip("*").strip() for n in decl.split(",")]
        names[0] = names[0].split()[-1].lstrip("*")
        fields += names
    return fields


@pytest.mark.skipif(not os.path.exists(HEADER), reason="not run from a source checkout")
@pytest.mark.parametrize("cname, mirror", [
    ("sieve_shape", _lib.Shape), ("sieve_config", _lib.Config), ("sieve_tensor", _lib.Tensor),
    ("sieve_tables_info", _lib.TablesInfo), ("sieve_table_view", _lib.TableView),
    ("sieve_device_info", _lib.DeviceInfo), ("sieve_dynplan_info", _lib.DynPlanInfo), ("sieve_chunk", _parts.Chunk),
])
def test_struct_mirrors_match_the_header(cname, mirror):
    assert [n for n, _ in mirror._fields_] == header_fields(cname)
