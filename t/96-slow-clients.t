# One client must not lock everyone else out (slowloris).  An attacker on
# 127.0.0.2 holds 2,100 connections to the stack, as in the report that
# found it: (1) half-open, trickling a header line every second; (2) idle
# keep-alive connections after one request each; (3) POSTs whose bodies
# trickle in a byte a second.  Throughout, a normal client on 127.0.0.1
# gets every answer right, and the attacker's connections are closed by
# the timeouts or answered with the JSON 429 of conn_per_address, never
# held longer.  Bounded: 2,100 loopback connections at most, ~40 s.
use strict;
use warnings;
use Errno qw(EAGAIN EWOULDBLOCK ECONNRESET);
use IO::Poll qw(POLLIN POLLHUP POLLERR);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local ();

use lib 't/lib';
use KVTest qw(json_is);

my $ATTACK = 2100;
my %CONF = (conn_per_address => 16, header_timeout => 4, body_timeout => 2,
    keepalive_timeout => 3);
my $s = KVTest->start(%CONF, workers => 2);
my $u = $s->new_user('sl');
my %auth = %{ $s->auth($u->{token}) };
my $TOO_MANY = {status => 'error', code => 'TOO_MANY_REQUESTS',
    message => $KVTest::ERRORS{TOO_MANY_REQUESTS}[1]};

# Two decoded JSON values are the same, types included.
my $CANON = JSON::PP->new->canonical;
sub same { $CANON->encode(KVTest::tag($_[0])) eq $CANON->encode(KVTest::tag($_[1])) }

# The normal client: one request after another, each checked whole.
my ($probes, @bad, $seq) = (0);
sub probe1 {
    my $k = sprintf 'n96-%d-%d', $$, ++$seq;
    my @steps = (
        [GET => '/api/health', undef, 200, {status => 'success', data => {database => 'up'}}],
        [POST => '/api/data', {key => $k, value => [$seq]}, 201,
            {status => 'success', message => 'Data stored successfully.'}],
        [GET => "/api/data/$k", undef, 200, {status => 'success', data => {key => $k, value => [$seq]}}],
    );
    for my $st (@steps) {
        my ($m, $path, $json, $want, $body) = @$st;
        my $r = $s->request($m => $path, {headers => \%auth, defined $json ? (json => $json) : ()});
        $probes++;
        my $got = eval { JSON::PP->new->decode($r->{body}) };
        push @bad, "$m $path: $r->{status} $r->{body}"
            unless $r->{status} == $want && $got && same($got, $body);
    }
}

# The normal client runs in a process of its own, truly beside the
# attack (and so that a slow answer to it never delays the attacker's
# clock), from start_probes until stop_probes, which collects its count
# and failures.
my ($prober, $report);
sub start_probes {
    $report = $s->dir . "/probes.$$." . ++$seq;
    $prober = fork // die "fork: $!";
    return if $prober;
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    ($probes, @bad) = (0);
    probe1() until $stop;
    open my $fh, '>', $report or POSIX::_exit(1);
    print $fh JSON::PP->new->encode({probes => $probes, bad => \@bad});
    close $fh;
    POSIX::_exit(0);
}
sub stop_probes {
    kill TERM => $prober;
    waitpid $prober, 0;
    my $r = eval { local (@ARGV, $/) = ($report); JSON::PP->new->decode(<>) }
        // {probes => 0, bad => ["the normal client died ($?)"]};
    ($probes, @bad) = ($r->{probes}, @{ $r->{bad} });
}

# No failed answer for the normal client in the last start..stop.
sub probes_ok {
    my ($what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($probes > 0 && !@bad, "the normal client's $probes requests all succeeded $what")
        or diag sprintf "%d of %d failed; the first: %s", scalar @bad, $probes, $bad[0] // '-';
}

# Open $n connections from the attacker's address, each sending $first.
# With $batch, every $batch connections are made first and then send at
# once, so that their requests are in progress together.
sub attack {
    my ($n, $first, $batch) = @_;
    my @c;
    for my $i (1 .. $n) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port,
            LocalAddr => '127.0.0.2', Proto => 'tcp', Timeout => 10)
            or die "attacker connect: $!";
        $sock->blocking(0);
        push @c, {sock => $sock, t0 => time, in => ''};
        next if $batch && $i % $batch && $i < $n;
        for my $c (@c[($batch ? @c - ($i % $batch || $batch) : $#c) .. $#c]) {
            syswrite $c->{sock}, $first;
            $c->{t0} = time;
        }
    }
    return @c;
}

# Read what the server sent on the attacker's open connections; mark the
# ones it closed (end of file or reset) with the time it took.
sub reap {
    my (@c) = @_;
    my $poll = IO::Poll->new;
    $poll->mask($_->{sock} => POLLIN) for grep { !$_->{closed} } @c;
    $poll->poll(0.2);
    for my $c (grep { !$_->{closed} } @c) {
        next unless $poll->events($c->{sock});
        my $n = sysread $c->{sock}, $c->{in}, 65536, length $c->{in};
        next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK);
        next if $n;
        $c->{closed} = time - $c->{t0};
        $c->{reset} = !defined $n && $! == ECONNRESET;
        close $c->{sock};
    }
}

sub open_count { scalar grep { !$_->{closed} } @_ }

# Each answer the attacker got: 200 (its own request, in phase 2) or the
# contract's 429 with Retry-After; anything else is listed.
sub answers {
    my ($want_ok, @c) = @_;
    my %n;
    for my $c (grep { length $_->{in} } @c) {
        for my $one (split /(?=HTTP\/1\.1 )/, $c->{in}) {
            my $r = KVTest::_parse_raw($one);
            my $got = eval { JSON::PP->new->decode($r->{body}) };
            my $kind = !$got ? "unparsed: $one"
                : $r->{status} == 429 && ($r->{headers}{'retry-after'} // '') =~ /^\d+$/
                    && same($got, $TOO_MANY) ? 429
                : $r->{status} == 200 && $want_ok && same($got, $want_ok) ? 200
                : "$r->{status} $r->{body}";
            $n{$kind}++;
        }
    }
    return \%n;
}

# Reap the attack until $until returns true or $secs pass.
sub while_attacked {
    my ($secs, $c, $until) = @_;
    my $end = time + $secs;
    while (time < $end) {
        reap(@$c);
        last if $until && $until->();
    }
}

# --- (1) half-open connections, a header line a second -----------------
{
    my @c = attack($ATTACK, "GET /api/health HTTP/1.1\r\nHost: kvapi\r\n");
    my $opened = time;
    is(open_count(@c), $ATTACK, "the attacker holds $ATTACK half-open connections");
    start_probes();
    my $next = time + 1;
    my $line = 0;
    # Long past the header timeout: were it armed again by each line, the
    # connections would still be open at the end.
    while_attacked($CONF{header_timeout} + 15, \@c, sub {
        if (time >= $next) {
            $line++;
            syswrite $_->{sock}, "X-Trickle-$line: x\r\n" for grep { !$_->{closed} } @c;
            $next += 1;
        }
        return open_count(@c) == 0;
    });
    stop_probes();
    is(open_count(@c), 0, 'the server closed every one of them, trickle or not');
    my @early = grep { $_->{closed} && $_->{closed} < $CONF{header_timeout} - 1 } @c;
    is(scalar @early, 0, 'none before the header timeout (nothing ran out of room)');
    # When nginx closed them, by its own clock (our loop may see a close
    # late on a busy machine): it logs each header that timed out.
    my @timed_out = map { /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) / ? [$1, $2, $3, $4, $5, $6] : () }
        grep { /client timed out .* while reading client request headers, client: 127\.0\.0\.2,/ }
        split /\n/, $s->log_text('nginx');
    is(scalar @timed_out, $ATTACK, "nginx timed out the headers of all $ATTACK (its error log)");
    my ($last) = sort { $b <=> $a } map {
        my @t = @$_;
        Time::Local::timelocal($t[5], $t[4], $t[3], $t[2], $t[1] - 1, $t[0]) } @timed_out;
    ok(defined $last && $last <= int($opened) + $CONF{header_timeout} + 2,
        sprintf "the last %.0f s after the last connection opened, within the header timeout (%d s)",
        ($last // 0) - $opened, $CONF{header_timeout});
    is_deeply(answers(undef, @c), {}, 'and none was answered');
    probes_ok('meanwhile');
    note sprintf '(1) %d of %d closed by reset; the last after %.1f s', scalar(grep { $_->{reset} } @c),
        scalar @c, (sort { $b <=> $a } map { $_->{closed} // 0 } @c)[0];
}

# --- (2) idle keep-alive connections ------------------------------------
{
    my @c = attack($ATTACK, "GET /api/health HTTP/1.1\r\nHost: kvapi\r\n\r\n", 100);
    start_probes();
    # nginx's default keep-alive timeout is 75 s: closed well before, they
    # were closed by keepalive_timeout.
    while_attacked($CONF{keepalive_timeout} + 15, \@c, sub { open_count(@c) == 0 });
    stop_probes();
    is(open_count(@c), 0, "the server closed all $ATTACK idle keep-alive connections "
        . "(keepalive_timeout $CONF{keepalive_timeout} s)");
    note sprintf '(2) the last seen closed after %.1f s', (sort { $b <=> $a } map { $_->{closed} // 0 } @c)[0];
    my $n = answers({status => 'success', data => {database => 'up'}}, @c);
    my $ok = ($n->{200} // 0) + ($n->{429} // 0);
    is($ok, $ATTACK, 'each of its requests got the health answer or the JSON 429')
        or diag explain $n;
    ok($n->{429}, "over conn_per_address ($CONF{conn_per_address}) in progress: 429 (got $n->{429})");
    probes_ok('meanwhile');
}

# --- (3) bodies trickled a byte a second ---------------------------------
{
    my $n = 4 * $CONF{conn_per_address};
    my $body = '{"key":"t96-trickle","value":"never stored"}';
    my $head = sprintf "POST /api/data HTTP/1.1\r\nHost: kvapi\r\nAuthorization: %s\r\n"
        . "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", $auth{Authorization}, length $body;
    my @c = attack($n, $head . substr($body, 0, 1));
    start_probes();
    # A byte a second for a while (the connections within the limit are
    # read by nginx, never handed to a worker), then a pause longer than
    # the body timeout.
    my $sent = 1;
    my $trickle_end = time + 4;
    my $next = time + 1;
    while_attacked(4, \@c, sub {
        if (time >= $next && time < $trickle_end) {
            syswrite $_->{sock}, substr($body, $sent, 1) for grep { !$_->{closed} } @c;
            $sent++;
            $next += 1;
        }
        return 0;
    });
    stop_probes();
    my $answered = answers(undef, @c);
    is_deeply($answered, {429 => $n - $CONF{conn_per_address}},
        "of $n trickled bodies, all over conn_per_address got the JSON 429 at once");
    my @reading = grep { !length $_->{in} } @c;
    is(open_count(@reading), $CONF{conn_per_address},
        "the $CONF{conn_per_address} within it were still being read after 4 s");
    probes_ok('during the trickle, with 2 workers');
    my $pause = time;
    start_probes();
    while_attacked($CONF{body_timeout} + 5, \@c, sub { open_count(@reading) == 0 });
    stop_probes();
    is(open_count(@reading), 0, 'a pause longer than the body timeout closed them');
    ok(time - $pause <= $CONF{body_timeout} + 4, sprintf 'within %.1f s of the pause', time - $pause);
    is_deeply(answers(undef, @reading), {}, 'with no answer');
    is($s->sql("SELECT COUNT(*) FROM data WHERE k = 't96-trickle'")->[0][0], 0,
        'no trickled body reached a worker');
    probes_ok('afterwards');
}

$s->stop;
done_testing;
