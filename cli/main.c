#include <stdio.h>
#include "sieve.h"
int main(void) { printf("sieve %s\n", sieve_version()); return 0; }
