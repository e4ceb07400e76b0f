# The worker's own answers that nginx hides everywhere else: its 413
# PAYLOAD_TOO_LARGE for a body over body_max (API.md: "enforced by nginx
# and by the worker"; nginx's client_max_body_size, set from the same
# body_max, normally answers first), and its 500 INTERNAL_SERVER_ERROR for
# a database error that is not a lost connection ("details go to the log,
# never to the client").  The worker here runs with a body_max below
# nginx's, through a wrapper that sets KVAPI_BODY_MAX for it alone, and is
# also spoken to straight over its FastCGI socket.  One data worker, so
# that "the worker survives" is one pid.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;
use lib 't/lib';
use KVTest qw(json_is);

my $CT = 'application/json; charset=utf-8';
# The worker's limit; nginx keeps kvapi.conf's (the default, 1114112
# bytes).  Not a power of two: reading a body of unknown length grows
# its buffer from 4096 bytes up to the limit.
my $MAX = 10_000;

my $tmp = tempdir(CLEANUP => 1);
my $bin = KVTest->worker_bin;
die "odd worker path $bin\n" if $bin =~ /'/;
open my $w, '>', "$tmp/kvapi" or die "$tmp/kvapi: $!";
print $w "#!/bin/sh\nKVAPI_BODY_MAX=$MAX exec '$bin' \"\$@\"\n";
close $w or die "$tmp/kvapi: $!";
chmod 0755, "$tmp/kvapi" or die "chmod: $!";

my $s = do {
    local $ENV{KVAPI_BIN} = "$tmp/kvapi";
    KVTest->start(workers => 1, value_max => 4096);
};
my $U = $s->new_user('lim');
my %AUTH = %{ $s->auth($U->{token}) };
my @PIDS = $s->worker_pids;
is scalar @PIDS, 1, 'one data worker';
my @AUTH_PIDS = $s->worker_pids('auth');

# A valid body of exactly $n bytes, padded with spaces.
sub fit {
    my ($n, $t) = @_;
    die "fit: $t is over $n bytes\n" if length $t > $n;
    return $t . ' ' x ($n - length $t);
}

sub send_body {
    my ($method, $path, $body, %h) = @_;
    return $s->request($method => $path,
        { headers => { 'Content-Type' => 'application/json', %h }, body => $body });
}

# The worker wrote this answer, not nginx: nginx's own error pages send
# no Cache-Control.
sub from_worker {
    my ($r, $name) = @_;
    is $r->{headers}{'cache-control'}, 'no-store', "$name: answered by the worker";
    is $r->{headers}{'access-control-allow-origin'}, '*', "$name: CORS";
}

sub same_worker {
    my ($name) = @_;
    is_deeply [ $s->worker_pids ], \@PIDS, "$name: the same data worker, not restarted";
    is_deeply [ $s->worker_pids('auth') ], \@AUTH_PIDS, "$name: the same auth workers";
}

subtest "413 from the worker through nginx: body_max $MAX below nginx's" => sub {
    my $r = send_body(POST => '/api/data', fit($MAX, '{"key":"edge","value":"v"}'), %AUTH);
    is $r->{status}, 201, "$MAX bytes: accepted" or diag $r->{body};

    for my $n ($MAX + 1, 100_000) {
        $r = send_body(POST => '/api/data', fit($n, qq({"key":"big$n","value":"v"})), %AUTH);
        $s->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/data, $n bytes");
        from_worker($r, "POST /api/data, $n bytes");
        $r = send_body(PUT => '/api/data/edge', fit($n, '{"value":"w"}'), %AUTH);
        $s->error_is($r, 'PAYLOAD_TOO_LARGE', "PUT /api/data/edge, $n bytes");
        from_worker($r, "PUT, $n bytes");
        $r = send_body(POST => '/api/register', fit($n, '{}'));
        $s->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/register (auth pool), $n bytes");
        from_worker($r, "register, $n bytes");
        $r = send_body(POST => '/api/token', fit($n, '{}'));
        $s->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/token (auth pool), $n bytes");
        from_worker($r, "token, $n bytes");
    }
    # Chunked: nginx buffers it and tells the worker its length.
    my $chunk = fit($MAX + 1, '{"key":"chunked","value":"v"}');
    $r = $s->raw("POST /api/data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $U->{token}\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        . sprintf('%x', length $chunk) . "\r\n$chunk\r\n0\r\n\r\n");
    $s->error_is($r, 'PAYLOAD_TOO_LARGE', 'POST /api/data, chunked, ' . ($MAX + 1) . ' bytes');
    from_worker($r, 'chunked');

    # API.md: auth first on data routes, then body parsing.
    $r = send_body(POST => '/api/data', fit($MAX + 1, '{"key":"k","value":"v"}'));
    $s->error_is($r, 'INVALID_TOKEN', 'too large and no token: INVALID_TOKEN first');
    $r = send_body(POST => '/api/data', fit($MAX + 1, '{"key":"k","value":"v"}'),
        Authorization => 'Bearer ' . ('A' x 43));
    $s->error_is($r, 'INVALID_TOKEN', 'too large and an unknown token: INVALID_TOKEN first');

    $r = $s->request(GET => '/api/data/edge', { headers => \%AUTH });
    is $r->{status}, 200, 'the next request is served';
    json_is($r, { status => 'success', data => { key => 'edge', value => 'v' } },
        'the key is untouched by the oversized PUTs');
    $s->error_is($s->request(GET => "/api/data/big$_", { headers => \%AUTH }), 'KEY_NOT_FOUND',
        "nothing stored from the $_-byte POST") for $MAX + 1, 100_000;
    same_worker('after the 413s');
};

# FastCGI params as nginx sends them (fastcgi_params and the site).
sub params {
    my ($method, $uri, %p) = @_;
    return { GATEWAY_INTERFACE => 'CGI/1.1', SERVER_PROTOCOL => 'HTTP/1.1',
        REQUEST_METHOD => $method, REQUEST_URI => $uri, PATH_INFO => $uri,
        SCRIPT_NAME => $uri, QUERY_STRING => '', REQUEST_ID => "t45fcgi$$",
        CONTENT_TYPE => 'application/json',
        HTTP_AUTHORIZATION => "Bearer $U->{token}", %p };
}

sub fcgi_ok {
    my ($r, $name) = @_;
    is $r->{app_status}, 0, "$name: FCGI_END_REQUEST, app status 0";
    is $r->{headers}{'content-type'}, $CT, "$name: content type";
}

subtest 'FastCGI straight to the worker: read_body enforces body_max by itself' => sub {
    my $n = 0;
    # Each case: CONTENT_LENGTH to send (undef: none, read to the end),
    # body bytes, expected status.
    my @cases = (
        [ 'CONTENT_LENGTH at the limit', $MAX, $MAX, 201 ],
        [ 'CONTENT_LENGTH one over', $MAX + 1, $MAX + 1, 413 ],
        [ 'no CONTENT_LENGTH, body at the limit', undef, $MAX, 201 ],
        [ 'no CONTENT_LENGTH, body one over', undef, $MAX + 1, 413 ],
        [ 'no CONTENT_LENGTH, 1 MB', undef, 1 << 20, 413 ],
        [ 'CONTENT_LENGTH 99999999999, a short body', '99999999999', 100, 413 ],
    );
    for my $c (@cases) {
        my ($name, $cl, $bytes, $want) = @$c;
        my $key = sprintf 'fc%02d', ++$n;
        my $body = fit($bytes, qq({"key":"$key","value":"v"}));
        my $r = $s->fcgi(params(POST => '/api/data',
            defined $cl ? (CONTENT_LENGTH => $cl) : ()), $body);
        fcgi_ok($r, $name);
        if ($want == 413) {
            $s->error_is($r, 'PAYLOAD_TOO_LARGE', $name);
        } else {
            is $r->{status}, 201, "$name: 201" or diag $r->{raw};
            json_is($r, { status => 'success', message => 'Data stored successfully.' }, "$name: body");
        }
        # The connection stayed in step: the same worker answers next.
        $r = $s->fcgi(params(GET => "/api/data/$key", CONTENT_LENGTH => ''), '');
        fcgi_ok($r, "$name, then GET");
        if ($want == 413) {
            $s->error_is($r, 'KEY_NOT_FOUND', "$name: nothing stored, the worker answers");
        } else {
            json_is($r, { status => 'success', data => { key => $key, value => 'v' } },
                "$name: stored, the worker answers");
        }
    }
    my $r = $s->fcgi(params(POST => '/api/token', CONTENT_LENGTH => $MAX + 1), fit($MAX + 1, '{}'),
        pool => 'auth');
    $s->error_is($r, 'PAYLOAD_TOO_LARGE', 'the auth pool: CONTENT_LENGTH one over');
    same_worker('after the FastCGI requests');
};

# ---------------------------------------------------------------------------
# 500: the database refuses a statement (not a lost connection).

my $DB = $s->db_name;

# Every byte of an answer: no trace of the database's error.
sub no_db_text {
    my ($r, $name, @secret) = @_;
    my $text = $r->{raw} // join "\n", $r->{body},
        map { my $v = $r->{headers}{$_}; "$_: " . (ref $v ? "@$v" : $v) } sort keys %{ $r->{headers} };
    my @found = grep { index(lc $text, lc $_) >= 0 } $DB, @secret;
    is_deeply \@found, [], "$name: no database text in the answer" or diag $text;
}

# The worker's log lines of request $rid.
sub log_of {
    my ($rid) = @_;
    return join "\n", grep { /\breq=\Q$rid\E / } split /\n/, $s->log_text('kvapi');
}

# A 500 exactly as the contract has it, its database message in the
# worker's log under the request's id and nowhere in the answer.
sub internal_error {
    my ($r, $name, $log_re, @secret) = @_;
    $s->error_is($r, 'INTERNAL_SERVER_ERROR', $name);
    no_db_text($r, $name, @secret);
    my $rid = $r->{headers}{'x-request-id'} // '';
    like $rid, qr/^[0-9a-f]{32}$/, "$name: X-Request-Id";
    my $log = log_of($rid);
    like $log, $log_re, "$name: the worker log has the database's message";
    like $log, qr/ error: req=\Q$rid\E answered 500 INTERNAL_SERVER_ERROR$/m,
        "$name: and the 500";
}

sub raw_req {
    my ($method, $path, $body) = @_;
    return $s->raw("$method $path HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $U->{token}\r\n"
        . (defined $body ? "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n" : '')
        . "Connection: close\r\n\r\n" . ($body // ''));
}

subtest '500 when a table is gone: the data statements fail, nothing else' => sub {
    my $r = send_body(POST => '/api/data', '{"key":"kept","value":{"a":[1,2]}}', %AUTH);
    is $r->{status}, 201, 'a key stored before the fault';
    $s->sql('RENAME TABLE data TO data_away');
    my $gone = qr/ error: req=\S+ statement \S+.*Table '\Q$DB\E\.data' doesn't exist/;
    my @secret = ("doesn't exist", 'data_away', "$DB.data", '1146', 'mariadb', 'mysql', 'statement');
    internal_error(raw_req(GET => '/api/data/kept'), 'GET /api/data/kept', $gone, @secret);
    internal_error(raw_req(POST => '/api/data', '{"key":"new","value":1}'), 'POST /api/data', $gone, @secret);
    internal_error(raw_req(PUT => '/api/data/kept', '{"value":2}'), 'PUT /api/data/kept', $gone, @secret);
    internal_error(raw_req(DELETE => '/api/data/kept'), 'DELETE /api/data/kept', $gone, @secret);
    internal_error(raw_req(GET => '/api/data?limit=5'), 'GET /api/data (list)', $gone, @secret);

    # The fault stays where it is: logins and health do not use the table.
    $r = $s->request(POST => '/api/token',
        { json => { username => $U->{username}, password => $U->{password} } });
    is $r->{status}, 200, 'a login still works';
    $r = $s->request(GET => '/api/health');
    json_is($r, { status => 'success', data => { database => 'up' } }, 'health: the database is up');

    $s->sql('RENAME TABLE data_away TO data');
    $r = $s->request(GET => '/api/data/kept', { headers => \%AUTH });
    is $r->{status}, 200, 'restored: GET 200';
    json_is($r, { status => 'success', data => { key => 'kept', value => { a => [1, 2] } } },
        'restored: the value as stored');
    $r = send_body(POST => '/api/data', '{"key":"new","value":1}', %AUTH);
    is $r->{status}, 201, 'restored: POST 201 (nothing was stored by the failed one)';
    $r = send_body(PUT => '/api/data/kept', '{"value":2}', %AUTH);
    json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'restored: PUT 200');
    $r = $s->request(DELETE => '/api/data/new', { headers => \%AUTH });
    json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'restored: DELETE 200');
    same_worker('after the 500s');
};

subtest '500 when the server refuses a write (a trigger signals an error)' => sub {
    my $msg = "kvt45 refused by trigger $$";
    $s->sql("CREATE TRIGGER kvt45_refuse BEFORE INSERT ON users FOR EACH ROW "
        . "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '$msg'");
    my $name = "lim45_$$";
    my $body = qq({"username":"$name","email":"$name\@example.com","password":"correct horse 1","full_name":"L"});
    my $r = $s->raw("POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body");
    internal_error($r, 'POST /api/register (auth pool)', qr/ error: req=\S+ statement .*\Q$msg\E/,
        $msg, 'trigger', '45000', 'signal');

    $s->sql('DROP TRIGGER kvt45_refuse');
    $r = $s->register(username => $name, email => "$name\@example.com",
        password => 'correct horse 1', full_name => 'L');
    is $r->{status}, 201, 'trigger dropped: the same registration is 201' or diag $r->{body};
    $r = $s->request(POST => '/api/token', { json => { username => $name, password => 'correct horse 1' } });
    is $r->{status}, 200, 'and the new user logs in';
};

unlike $s->log_text('kvapi'), qr/\Q$U->{password}\E|\Q$U->{token}\E/,
    'the worker log has no password or token';

$s->stop;
done_testing;
