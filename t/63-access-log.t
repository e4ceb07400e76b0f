# The JSON access log (API.md "Operations"; nginx/kvapi.conf.in,
# kvapi_json): every line of a run is one JSON object with exactly the
# fields of the format, each request's line matches what its client got
# (request id, method, raw path without the query, status, body bytes),
# upstream_time is a number when a worker answered and null when nginx
# answered itself (404 outside /api/, 413, an unparsable request), and
# user_id is the token's user for a request with a valid token, null
# otherwise.  The worker's X-Kvapi-User header, which carries it, never
# reaches the client.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use KVTest qw(tag poll_until);

my $s = KVTest->start(body_max => 4096, value_max => 2048);
my $u = $s->new_user('al63');
my $other = $s->new_user('al63o');
my $uid = $u->{user_id};
like $uid, qr/\A[1-9][0-9]*\z/, 'setup: the user id';

# Every request of the run, with what its line must say.
my @sent;

# Send one request (request() or raw()), check that the answer carries no
# X-Kvapi-User, and remember what its log line must hold: path, status,
# whose it is (a user id or undef), and whether a worker answered.
sub sent {
    my ($res, $name, %exp) = @_;
    my $raw = $res->{raw} // join "\n", map { "$_: $res->{headers}{$_}" } keys %{ $res->{headers} };
    subtest "$name: the answer" => sub {
        is $res->{status}, $exp{status}, 'status' or diag $res->{body};
        ok !exists $res->{headers}{'x-kvapi-user'}, 'no X-Kvapi-User header';
        unlike $raw, qr/x-kvapi-user/i, 'not anywhere in the headers either';
        like $res->{headers}{'x-request-id'} // '', qr/\A[0-9a-f]{32}\z/, 'X-Request-Id';
    };
    push @sent, { %exp, name => $name, rid => $res->{headers}{'x-request-id'} // '',
        bytes => length $res->{body} };
    return $res;
}

my $A = $s->auth($u->{token});
# Anonymous, answered by a worker.
sent($s->request(GET => '/api/health'), 'GET /api/health', path => '/api/health', status => 200, method => 'GET');
sent($s->request(POST => '/api/token', { json => { username => $u->{username}, password => 'wrong password' } }),
    'a wrong login', path => '/api/token', status => 401, method => 'POST');
sent($s->request(GET => '/api/data/k1', { headers => { Authorization => 'Bearer ' . ('x' x 43) } }),
    'an unknown token', path => '/api/data/k1', status => 401, method => 'GET');
sent($s->request(GET => '/api/users/me'), 'no token', path => '/api/users/me', status => 401, method => 'GET');

# Authenticated: every kind of route, successes and errors.
sent($s->request(POST => '/api/data', { headers => $A, json => { key => 'a/b', value => { n => 1 } } }),
    'POST /api/data', path => '/api/data', status => 201, method => 'POST', user => $uid);
sent($s->request(GET => '/api/data/a%2Fb?fields=x&y=%22', { headers => $A }),
    'GET of a key with %2F and a query', path => '/api/data/a%2Fb', status => 200, method => 'GET', user => $uid);
sent($s->request(HEAD => '/api/data/a%2Fb', { headers => $A }),
    'HEAD of the key', path => '/api/data/a%2Fb', status => 200, method => 'HEAD', user => $uid);
sent($s->request(PUT => '/api/data/a%2Fb', { headers => $A, json => { value => 2 } }),
    'PUT', path => '/api/data/a%2Fb', status => 200, method => 'PUT', user => $uid);
sent($s->request(PUT => '/api/data/nope', { headers => $A, json => { value => 2 } }),
    'PUT of a missing key (404)', path => '/api/data/nope', status => 404, method => 'PUT', user => $uid);
sent($s->request(GET => '/api/data/nope', { headers => $A }),
    'GET of a missing key (404)', path => '/api/data/nope', status => 404, method => 'GET', user => $uid);
sent($s->request(POST => '/api/data', { headers => $A, json => { key => '', value => 1 } }),
    'POST with a bad key (400, before any statement)', path => '/api/data', status => 400, method => 'POST', user => $uid);
sent($s->request(GET => '/api/data?limit=5', { headers => $A }),
    'the listing', path => '/api/data', status => 200, method => 'GET', user => $uid);
sent($s->request(GET => '/api/users/me', { headers => $A }),
    'GET /api/users/me', path => '/api/users/me', status => 200, method => 'GET', user => $uid);
sent($s->request(GET => '/api/sessions', { headers => $A }),
    'GET /api/sessions', path => '/api/sessions', status => 200, method => 'GET', user => $uid);
sent($s->request(DELETE => '/api/data/a%2Fb', { headers => $A }),
    'DELETE', path => '/api/data/a%2Fb', status => 200, method => 'DELETE', user => $uid);
sent($s->request(GET => '/api/users/me', { headers => $s->auth($other->{token}) }),
    'another user', path => '/api/users/me', status => 200, method => 'GET', user => $other->{user_id});
sent($s->request(DELETE => '/api/token', { headers => $s->auth($other->{token}) }),
    'a logout', path => '/api/token', status => 200, method => 'DELETE', user => $other->{user_id});
sent($s->request(GET => '/api/users/me', { headers => $s->auth($other->{token}) }),
    'the token after its logout', path => '/api/users/me', status => 401, method => 'GET');

# Answered by nginx itself: no worker, no user.
sent($s->request(GET => '/nothing/here?q=1'), 'a 404 outside /api/',
    path => '/nothing/here', status => 404, method => 'GET', nginx => 1);
sent($s->request(POST => '/api/data', { headers => $A, json => { key => 'big', value => 'x' x 5000 } }),
    'a body over body_max (413 from nginx)', path => '/api/data', status => 413, method => 'POST', nginx => 1);
# What a client controls goes through escape=json: a quote and a
# backslash in the path (a key), a request line nginx cannot parse.
sent($s->raw("GET /api/data/q%22\\\"x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Authorization: Bearer $u->{token}\r\n\r\n"), 'a quote and a backslash in the path',
    path => '/api/data/q%22\\"x', status => 404, method => 'GET', user => $uid);
# Its method is the first word of what was sent, its path empty.
sent($s->raw("G\"E\\T not a request\r\n\r\n"), 'an unparsable request line (400)',
    path => '', status => 400, method => 'G"E\\T', nginx => 1);

# nginx writes a line as each request ends: wait for all of them.
my $lines;
# Besides ours: script/stack's probe (GET /) and new_user's four.
ok poll_until(10, sub { $lines = eval { $s->access_log }; $lines && @$lines >= @sent + 5 }),
    'the access log has a line for every request'
    or diag $@;
$lines = $s->access_log;    # dies on a line that is not a JSON object
is scalar @$lines, @sent + 5, 'one line per request, no more';
my @fields = sort qw(time request_id remote_addr method path status bytes request_time upstream_time user_id);

subtest 'every line has the fields of the format, typed' => sub {
    for my $l (@$lines) {
        my $t = tag($l);
        is_deeply [ sort keys %$l ], \@fields, "line $l->{request_id}: the fields";
        like $t->{time}, qr/\Astr:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\z/, 'time: ISO 8601';
        like $t->{request_id}, qr/\Astr:[0-9a-f]{32}\z/, 'request_id';
        is $t->{remote_addr}, 'str:127.0.0.1', 'remote_addr';
        like $t->{status}, qr/\Anum:[1-5]\d\d\z/, 'status: a number';
        like $t->{bytes}, qr/\Anum:\d+\z/, 'bytes: a number';
        like $t->{request_time}, qr/\Anum:/, 'request_time: a number';
        like $t->{upstream_time}, qr/\A(?:num:|null\z)/, 'upstream_time: a number or null';
        like $t->{user_id}, qr/\A(?:num:[1-9]\d*|null)\z/, 'user_id: a number or null';
    }
};

my %by_rid = map { $_->{request_id} => $_ } @$lines;
for my $e (@sent) {
    my $l = $by_rid{ $e->{rid} };
    subtest "$e->{name}: its line" => sub {
        ok $l, 'a line with its request id' or return;
        is $l->{method}, $e->{method}, 'method: of the request line';
        is $l->{path}, $e->{path}, 'path: raw, without the query';
        is $l->{status}, $e->{status}, 'status';
        is $l->{bytes}, $e->{method} && $e->{method} eq 'HEAD' ? 0 : $e->{bytes}, 'bytes: the body sent';
        if ($e->{nginx}) {
            is tag($l->{upstream_time}), 'null', 'upstream_time null: nginx answered';
        } else {
            like tag($l->{upstream_time}), qr/\Anum:/, 'upstream_time: a worker answered';
        }
        if (defined $e->{user}) {
            is tag($l->{user_id}), tag(0 + $e->{user}), "user_id: $e->{user}";
        } else {
            is tag($l->{user_id}), 'null', 'user_id null: no valid token';
        }
    };
}

done_testing;
