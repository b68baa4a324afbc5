# Turns a Lua source file into a C string the library carries.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from prelude.lua */\n#include <stddef.h>\nconst char lp_prelude_src[] = {${body} 0};\nconst size_t lp_prelude_len = sizeof lp_prelude_src - 1;\n")
