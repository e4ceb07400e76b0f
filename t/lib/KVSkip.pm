package KVSkip;

# Records every skip of a test run, so that script/test can print them all
# and fail the full run on any that t/skips.allowed does not list.  Loaded
# into every test file through PERL5OPT=-MKVSkip (script/test sets it); a
# listener on Test2's hub (inherited by subtests) sees both kinds:
# `skip` inside a SKIP block and `plan skip_all` of a file or a subtest.
# Each skip is one line "FILE:LINE<TAB>REASON" appended to the file named
# by KVAPI_SKIP_LOG.  Without KVAPI_SKIP_LOG it does nothing.

use strict;
use warnings;

use Fcntl qw(:flock);
use Test2::API qw(test2_add_callback_post_load test2_stack);

my $LOG = $ENV{KVAPI_SKIP_LOG};
my %seen;

sub record {
    my ($trace, $reason) = @_;
    my ($file, $line) = @{ $trace->{frame} || [] }[1, 2];
    # A skip inside a helper module is the test file's skip.
    $file = $0 unless defined $file && $file =~ /\.t\z/;
    $file =~ s{^.*/(t/[^/]+)\z}{$1};
    $reason //= '';
    $reason =~ s/\s+/ /g;
    my $rec = sprintf "%s:%s\t%s\n", $file, $line // 0, $reason;
    return if $seen{$rec}++;
    open my $fh, '>>', $LOG or return;
    flock $fh, LOCK_EX;
    print $fh $rec;
    close $fh;
}

test2_add_callback_post_load(sub {
    test2_stack()->top->listen(sub {
        my (undef, $e) = @_;
        my $f = $e->facet_data;
        if ($f->{plan} && $f->{plan}{skip}) {
            record($f->{trace}, $f->{plan}{details});
        }
        for my $a (@{ $f->{amnesty} || [] }) {
            record($f->{trace}, $a->{details}) if $a->{tag} eq 'skip';
        }
    }, inherit => 1);
}) if $LOG;

1;
