/* core/eval/luaunit.h — the embedded luaunit.lua module (see luaunit.c). */
#ifndef MP_LUAUNIT_H
#define MP_LUAUNIT_H

/* Lua source of a minimal luaunit-compatible module (NUL-terminated). */
extern const char mp_luaunit_lua[];

#endif
