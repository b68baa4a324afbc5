/*
** CG_CLONES: a hot loop built twice, for AVX2 and for any x86-64, the
** loader choosing one through an ifunc. ThreadSanitizer instruments that
** chooser, which runs before the sanitizer has started and crashes the
** library's load, so its builds take the one plain copy (clang makes no
** clones either: its vector code here is the plain build's).
*/
#ifndef CG_CLONES_H
#define CG_CLONES_H

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define CG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CG_CLONES
#endif

#endif
