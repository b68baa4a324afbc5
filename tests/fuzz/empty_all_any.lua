return sieve.pattern{name = 'x', mask = sieve.all() | sieve.any()}
