# The rate limit of the bcrypt routes (API.md: TOO_MANY_REQUESTS, "token
# and register endpoints per client address"; nginx's limit_req from
# auth_rate and auth_burst in kvapi.conf).  Clients speak from several
# loopback addresses (all of 127/8 is loopback on Linux; the stack
# listens on 127.0.0.1): an address over its limit gets the whole JSON 429
# with Retry-After the time one request of the rate takes, on both routes
# (one budget per address), while another address is served at that same
# moment; CORS preflights to those routes are never limited, and use none
# of the budget (API.md: OPTIONS on any /api path is 204); and once
# Retry-After has passed the address is served again.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest qw(json_is);

my ($RATE, $BURST, $RETRY) = ('1r/m', 3, 60);
my ($A, $B, $C) = ('127.0.0.2', '127.0.0.3', '127.0.0.4');

my $s = KVTest->start(auth_rate => $RATE, auth_burst => $BURST);
my $seq = 0;

# A user made from 127.0.0.1 (two of its requests).
my $U = do {
    my $n = "rl$$";
    my %u = (username => $n, email => "$n\@example.com", password => 'correct horse 1',
        full_name => 'Rate');
    my $r = $s->register(%u);
    die "register: $r->{status} $r->{body}\n" unless $r->{status} == 201;
    \%u;
};

sub login {
    my ($addr) = @_;
    return $s->request_from($addr, POST => '/api/token',
        { json => { username => $U->{username}, password => $U->{password} } });
}

sub register {
    my ($addr) = @_;
    my $n = sprintf 'rl%d_%d', $$, ++$seq;
    return $s->request_from($addr, POST => '/api/register', { json => {
        username => $n, email => "$n\@example.com", password => 'correct horse 1',
        full_name => 'Rate' } });
}

sub preflight {
    my ($addr, $path) = @_;
    return $s->request_from($addr, OPTIONS => $path, { headers => {
        Origin => 'http://app.example', 'Access-Control-Request-Method' => 'POST',
        'Access-Control-Request-Headers' => 'content-type' } });
}

sub served {
    my ($r, $status, $name) = @_;
    is $r->{status}, $status, $name or diag "$r->{status} $r->{body}";
}

# The whole 429, with the headers a browser client needs to read it.
sub limited {
    my ($r, $name, $retry) = @_;
    $s->error_is($r, 'TOO_MANY_REQUESTS', $name);
    is $r->{headers}{'retry-after'}, $retry // $RETRY, "$name: Retry-After";
    is $r->{headers}{'access-control-allow-origin'}, '*', "$name: Access-Control-Allow-Origin";
    like $r->{headers}{'access-control-expose-headers'} // '', qr/\bRetry-After\b/,
        "$name: Retry-After is exposed";
}

# $n preflights from $addr to each bcrypt route, all 204 preflights.
sub preflights {
    my ($addr, $n, $name) = @_;
    my @bad;
    for my $i (1 .. $n) {
        for my $path ('/api/token', '/api/register') {
            my $r = preflight($addr, $path);
            push @bad, "$path #$i: $r->{status}"
                unless $r->{status} == 204 && $r->{body} eq ''
                && ($r->{headers}{'access-control-allow-methods'} // '') eq 'GET,HEAD,PUT,PATCH,POST,DELETE'
                && ($r->{headers}{'access-control-allow-headers'} // '') eq 'content-type';
        }
    }
    is_deeply \@bad, [], "$name: $n preflights to each route, every one 204";
}

subtest "an address over the limit ($RATE, burst $BURST) is refused, another is not" => sub {
    my $r = login($A);
    served($r, 200, "$A is served");
    served(login($A), 200, "$A: login $_") for 2 .. $BURST + 1;
    limited(login($A), "$A: login " . ($BURST + 2));
    limited(register($A), "$A: register, the same budget");
    limited($s->request_from($A, DELETE => '/api/token', { headers => $s->auth('x' x 43) }),
        "$A: log out, the same location");

    # The same moment, another address.
    served(login($B), 200, "$B: login");
    served(register($B), 201, "$B: register");
    limited(login($A), "$A: still refused after $B was served");

    preflights($A, 3 * ($BURST + 1), "$A over its limit");
    limited(register($A), "$A: register, still refused after the preflights");

    # nginx writes its access log line as a request ends: read it last.
    my $log = $s->access_log;
    ok((grep { $_->{remote_addr} eq $A && $_->{method} eq 'POST' && $_->{path} eq '/api/token' && $_->{status} == 200 } @$log),
        "nginx saw $A as the client address");
    ok((grep { $_->{remote_addr} eq $B && $_->{method} eq 'POST' && $_->{path} eq '/api/register' && $_->{status} == 201 } @$log),
        "nginx saw $B as the client address");
};

subtest 'preflights use none of the budget' => sub {
    preflights($C, 3 * ($BURST + 1), "$C first");
    served(register($C), 201, "$C: register $_") for 1 .. $BURST + 1;
    limited(register($C), "$C: register " . ($BURST + 2));
    limited(login($C), "$C: login, the same budget");
    served(register($B), 201, "$B: register, still in its budget");
};

subtest 'Retry-After is honest: the address is served again once it has passed' => sub {
    $s->restart_app(auth_rate => '1r/s', auth_burst => 1);
    served(login($A), 200, "$A: login 1 at 1r/s, burst 1");
    served(login($A), 200, "$A: login 2");
    my $r = login($A);
    my $t0 = time;
    limited($r, "$A: login 3", 1);
    my $deadline = $t0 + 10;
    my $n = 0;
    do { $r = login($A); $n++; sleep 0.05 if $r->{status} == 429 }
        while $r->{status} == 429 && time < $deadline;
    my $waited = time - $t0;
    served($r, 200, "$A: served again after $n tries");
    cmp_ok $waited, '<=', 1 + 2, sprintf 'within Retry-After (1 s) and 2 s of slack (waited %.2f s)', $waited;
};

$s->stop;
done_testing;
