#!/usr/bin/env perl
# The C unit tests (t/unit.c) speak TAP themselves: hand over to them.
use strict;
use warnings;
my $bin = ($ENV{KVAPI_BUILDDIR} // '.') . '/t/unit';
-x $bin or die "$bin is not built: run make check (or make t/unit)\n";
exec $bin or die "exec $bin: $!";
