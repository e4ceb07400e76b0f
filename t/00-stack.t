# The harness itself: a stack starts, nginx answers its own errors in the
# JSON envelope, the worker socket is private, and the database password
# shows on no command line.
use strict;
use warnings;
use Test::More;
use KVTest;

my $s = KVTest->start;
ok($s->port, 'stack started on port ' . $s->port);
is(scalar($s->worker_pids), 2, 'two workers');

my $res = $s->request(GET => '/api/health');
is($res->{status}, 200, 'a request reaches a worker and the database');
is_deeply($res->{json}, {status => 'success', data => {database => 'up'}},
    'health body') or diag $res->{body};

$res = $s->request(GET => '/nothing');
$s->error_is($res, 'NOT_FOUND', 'unknown path outside /api');
is($res->{body},
    '{"status":"error","code":"NOT_FOUND","message":"The requested resource does not exist."}',
    'whole 404 body');
is($res->{headers}{'access-control-allow-origin'}, '*', 'CORS origin on nginx errors');
is($res->{headers}{'access-control-expose-headers'},
    'ETag, Location, Retry-After, WWW-Authenticate', 'CORS exposed headers');
like($res->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, 'request id');

$s->error_is($s->raw("GARBAGE\r\n\r\n"), 'BAD_REQUEST', 'malformed request line');
$s->error_is($s->raw("GET /api/data/x HTTP/1.1\r\nHost: x\r\nX-Big: "
        . ('a' x 70_000) . "\r\n\r\n"), 'BAD_REQUEST', '70 KB header');
$s->error_is($s->request(TRACE => '/api/register'), 'METHOD_NOT_ALLOWED', 'TRACE');
$s->error_is($s->request(POST => '/api/data', {
        headers => {'Content-Type' => 'application/json'},
        body => '{"key":"k","value":"' . ('x' x (2 * 1024 * 1024)) . '"}'}),
    'PAYLOAD_TOO_LARGE', '2 MB body');

for my $sock (qw(kvapi write auth)) {
    my @st = stat($s->dir . "/run/$sock.sock");
    is(sprintf('%04o', $st[2] & 07777), '0600', "$sock.sock is mode 0600");
}

# nginx sends GET, HEAD and OPTIONS to the read pool (kvapi.sock), every
# other method to the write pool: with one pool's workers stopped, the
# other pool's requests are still answered, and at once (a request for
# the stopped pool would wait out the client's 5 s and fail).
{
    my $u = $s->new_user('s00');
    my %auth = (Authorization => "Bearer $u->{token}");
    my %pids = map { $_ => [ $s->worker_pids($_) ] } qw(kvapi write);
    is(scalar @{ $pids{write} }, 2, 'two write workers (workers => 2 sizes both data pools)');
    local $s->{http} = HTTP::Tiny->new(keep_alive => 0, timeout => 5, agent => 'kvtest');
    kill STOP => @{ $pids{kvapi} };
    my $post = sub { $s->request(POST => '/api/data', {headers => \%auth, json => {key => 'pool', value => $_[0]}}) };
    is($post->(1)->{status}, 201, 'POST answered with the read pool stopped');
    is($s->request(DELETE => '/api/data/pool', {headers => \%auth})->{status}, 200,
        'DELETE answered with the read pool stopped');
    is($post->(1)->{status}, 201, 'POST again');
    my $res = $s->request(PUT => '/api/data/pool', {headers => \%auth, json => {value => 2}});
    is($res->{status}, 200, 'PUT answered with the read pool stopped');
    kill CONT => @{ $pids{kvapi} };

    kill STOP => @{ $pids{write} };
    $res = $s->request(GET => '/api/data/pool', {headers => \%auth});
    is($res->{status}, 200, 'GET answered with the write pool stopped');
    is_deeply($res->{json}, {status => 'success', data => {key => 'pool', value => 2}},
        'GET body') or diag $res->{body};
    is($s->request(HEAD => '/api/data/pool', {headers => \%auth})->{status}, 200,
        'HEAD answered with the write pool stopped');
    $res = $s->request(OPTIONS => '/api/data/pool', {headers => {Origin => 'https://a.example',
                'Access-Control-Request-Method' => 'PUT'}});
    is($res->{status}, 204, 'a preflight answered with the write pool stopped');
    kill CONT => @{ $pids{write} };
}

my ($password) = do {
    open my $fh, '<', $s->config_path or die $!;
    map { /^db_password = (.+)$/ ? $1 : () } <$fh>;
};
ok(length $password, 'config holds a database password');
my @seen;
for my $f (glob '/proc/[0-9]*/cmdline') {
    open my $fh, '<', $f or next;
    local $/;
    my $cmd = <$fh> // next;
    push @seen, $f if index($cmd, $password) >= 0;
}
is_deeply(\@seen, [], 'database password on no command line');

done_testing;
