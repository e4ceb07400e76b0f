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

my @st = stat($s->dir . '/run/kvapi.sock');
is(sprintf('%04o', $st[2] & 07777), '0600', 'worker socket is mode 0600');

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
