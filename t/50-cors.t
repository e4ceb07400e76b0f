# CORS as Express cors() defaults (API.md "CORS"): Access-Control-Allow-Origin
# and Access-Control-Expose-Headers on every response, whoever answered it;
# preflight OPTIONS on any /api path; and the configurable origin allow-list.
use strict;
use warnings;
use utf8;
use Test::More;
use lib 't/lib';
use KVTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $EXPOSE = 'ETag, Location, Retry-After, WWW-Authenticate';
my $METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';

sub vary_has {
    my ($r, $what, $name) = @_;
    my $v = $r->{headers}{vary} // '';
    $v = join ', ', @$v if ref $v eq 'ARRAY';    # several Vary lines
    like $v, qr/(?:\A|,)\s*\Q$what\E\s*(?:,|\z)/i, $name;
}

sub cors_is {
    my ($r, $status, $origin, $name) = @_;
    subtest $name => sub {
        is $r->{status}, $status, "status $status" or diag $r->{body};
        is $r->{headers}{'access-control-allow-origin'}, $origin, "Access-Control-Allow-Origin: $origin";
        is $r->{headers}{'access-control-expose-headers'}, $EXPOSE, 'Access-Control-Expose-Headers';
    };
}

my $s = KVTest->start;
my $u = $s->new_user('cors');
my $AUTH = $s->auth($u->{token});

my $seq = 0;

sub all_kinds_of_response {
    my ($st, $auth, $user, %h) = @_;
    $seq++;
    my $j = sub { my ($m, $p, $body, %x) = @_;
                  $st->request($m => $p, { headers => { %h, %x }, defined $body ? (json => $body) : () }) };
    return (
        [ 'POST /api/register 201', 201,
          $j->(POST => '/api/register', { username => "cors_reg$seq", email => "cors_reg$seq\@example.com",
                                          password => 'correct horse', full_name => 'C' }) ],
        [ 'POST /api/register 400', 400, $j->(POST => '/api/register', {}) ],
        [ 'POST /api/token 200', 200, $j->(POST => '/api/token', { username => $user->{username}, password => $user->{password} }) ],
        [ 'POST /api/token 401', 401, $j->(POST => '/api/token', { username => $user->{username}, password => 'wrong password' }) ],
        [ 'POST /api/data 201', 201, $j->(POST => '/api/data', { key => "cors_new$seq", value => 1 }, %$auth) ],
        [ 'PUT 200', 200, $j->(PUT => '/api/data/cors_key', { value => 2 }, %$auth) ],
        [ 'GET 200', 200, $j->(GET => '/api/data/cors_key', undef, %$auth) ],
        [ 'HEAD 200', 200, $j->(HEAD => '/api/data/cors_key', undef, %$auth) ],
        [ 'GET 401 (no token)', 401, $j->(GET => '/api/data/cors_key') ],
        [ 'GET 404 KEY_NOT_FOUND', 404, $j->(GET => '/api/data/nope', undef, %$auth) ],
        [ 'GET 400 INVALID_KEY', 400, $j->(GET => '/api/data/a%01', undef, %$auth) ],
        [ 'POST 400 INVALID_VALUE', 400, $j->(POST => '/api/data', { key => 'x' }, %$auth) ],
        [ 'POST 409 KEY_EXISTS', 409, $j->(POST => '/api/data', { key => 'cors_key', value => 1 }, %$auth) ],
        [ 'POST 415', 415, $st->request(POST => '/api/data',
                                        { headers => { %h, %$auth, 'Content-Type' => 'text/plain' }, body => 'x' }) ],
        [ 'POST 400 INVALID_JSON', 400, $st->request(POST => '/api/data',
                                        { headers => { %h, %$auth, 'Content-Type' => 'application/json' }, body => '{' }) ],
        [ 'GET /api/nope 404 (worker)', 404, $j->(GET => '/api/nope') ],
        [ 'PATCH /api/register 405', 405, $j->(PATCH => '/api/register', {}) ],
        [ 'GET /nope 404 (nginx)', 404, $j->(GET => '/nope') ],
        [ 'GET /ui/x.js 404 (nginx, beside the web console)', 404, $j->(GET => '/ui/x.js') ],
        [ 'DELETE 200', 200, $j->(DELETE => '/api/data/cors_key', undef, %$auth) ],
    );
}

subtest 'every response carries the CORS headers' => sub {
    my $r = $s->request(POST => '/api/data', { headers => $AUTH, json => { key => 'cors_key', value => 1 } });
    is $r->{status}, 201, 'setup' or diag $r->{body};
    for my $origin (undef, 'https://anywhere.example') {
        my %h = defined $origin ? (Origin => $origin) : ();
        if (defined $origin) {
            $r = $s->request(POST => '/api/data', { headers => $AUTH, json => { key => 'cors_key', value => 1 } });
            is $r->{status}, 201, 'setup again' or diag $r->{body};
        }
        for (all_kinds_of_response($s, $AUTH, $u, %h)) {
            my ($name, $status, $resp) = @$_;
            cors_is($resp, $status, '*', $name . (defined $origin ? ", Origin $origin" : ', no Origin'));
        }
    }
};

subtest 'nginx-made errors carry the CORS headers' => sub {
    my $r = $s->raw("GET nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    cors_is($r, 400, '*', 'malformed request line: 400 from nginx');
    $r = $s->raw("POST /api/data HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               . "Authorization: Bearer $u->{token}\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n");
    cors_is($r, 413, '*', 'Content-Length of 100 MB: 413 from nginx');
};

subtest 'preflight' => sub {
    for my $p ('/api/register', '/api/token', '/api/data', '/api/data/cors_key', '/api/data/a%2Fb%20c',
               '/api/data/no-such-key', '/api/nope', '/api/', '/api/nope/deeper') {
        my $r = $s->request(OPTIONS => $p, { headers => {
            Origin                           => 'https://app.example',
            'Access-Control-Request-Method'  => 'PUT',
            'Access-Control-Request-Headers' => 'content-type,authorization,x-custom' } });
        subtest "OPTIONS $p" => sub {
            is $r->{status}, 204, 'status 204';
            is $r->{body}, '', 'empty body';
            is $r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin';
            is $r->{headers}{'access-control-allow-methods'}, $METHODS, 'Access-Control-Allow-Methods';
            is $r->{headers}{'access-control-allow-headers'}, 'content-type,authorization,x-custom',
                'Access-Control-Allow-Headers reflects the request';
            vary_has($r, 'Access-Control-Request-Headers', 'Vary: Access-Control-Request-Headers');
            is $r->{headers}{'access-control-expose-headers'}, $EXPOSE, 'Access-Control-Expose-Headers';
        };
    }

    my $r = $s->request(OPTIONS => '/api/data', { headers => {
        Origin => 'https://app.example', 'Access-Control-Request-Method' => 'POST' } });
    subtest 'without Access-Control-Request-Headers' => sub {
        is $r->{status}, 204, 'status 204';
        is $r->{body}, '', 'empty body';
        is $r->{headers}{'access-control-allow-methods'}, $METHODS, 'Access-Control-Allow-Methods';
        ok !exists $r->{headers}{'access-control-allow-headers'}, 'no Access-Control-Allow-Headers';
        vary_has($r, 'Access-Control-Request-Headers', 'Vary: Access-Control-Request-Headers');
    };

    $r = $s->request(OPTIONS => '/api/data/cors_key', { headers => {
        'Access-Control-Request-Headers' => 'Authorization' } });
    subtest 'no Origin, no auth: still a preflight answer' => sub {
        is $r->{status}, 204, 'status 204';
        is $r->{body}, '', 'empty body';
        is $r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin';
        is $r->{headers}{'access-control-allow-headers'}, 'Authorization', 'reflected as sent';
    };

    $r = $s->request(OPTIONS => '/api/data/cors_key', { headers => { Authorization => 'Bearer nonsense' } });
    is $r->{status}, 204, 'a bad token does not matter to OPTIONS';
    is $r->{headers}{'www-authenticate'}, undef, 'no WWW-Authenticate on a preflight';
};

subtest 'origin allow-list' => sub {
    my $s2 = KVTest->start(cors_origins => 'https://a.example https://b.example');
    my $u2 = $s2->new_user('cors2');
    my $auth2 = $s2->auth($u2->{token});
    my $r = $s2->request(POST => '/api/data', { headers => $auth2, json => { key => 'cors_key', value => 1 } });
    is $r->{status}, 201, 'setup' or diag $r->{body};

    for my $origin ('https://a.example', 'https://b.example') {
        for (all_kinds_of_response($s2, $auth2, $u2, Origin => $origin)) {
            my ($name, $status, $resp) = @$_;
            cors_is($resp, $status, $origin, "$name, Origin $origin");
            vary_has($resp, 'Origin', "$name: Vary: Origin");
        }
        $r = $s2->request(POST => '/api/data', { headers => $auth2, json => { key => 'cors_key', value => 1 } });
        is $r->{status}, 201, 'setup again' or diag $r->{body};
    }

    for my $origin ('https://evil.example', 'http://a.example', 'https://a.example.evil.example',
                    'https://a.example:8443', 'null', 'https://a.example https://b.example') {
        $r = $s2->request(GET => '/api/data/cors_key', { headers => { %$auth2, Origin => $origin } });
        is $r->{status}, 200, "GET with Origin '$origin': 200";
        ok !exists $r->{headers}{'access-control-allow-origin'}, "Origin '$origin': no Access-Control-Allow-Origin";
        vary_has($r, 'Origin', "Origin '$origin': Vary: Origin");
        $r = $s2->request(GET => '/api/data/cors_key', { headers => { Origin => $origin } });
        is $r->{status}, 401, "unauthenticated GET with Origin '$origin': 401";
        ok !exists $r->{headers}{'access-control-allow-origin'}, "401: no Access-Control-Allow-Origin";
        $r = $s2->request(GET => '/nope', { headers => { Origin => $origin } });
        ok !exists $r->{headers}{'access-control-allow-origin'}, "nginx 404: no Access-Control-Allow-Origin";
    }

    $r = $s2->request(GET => '/api/data/cors_key', { headers => $auth2 });
    is $r->{status}, 200, 'no Origin: 200';
    ok !exists $r->{headers}{'access-control-allow-origin'}, 'no Origin: no Access-Control-Allow-Origin';

    $r = $s2->request(OPTIONS => '/api/data/cors_key', { headers => {
        Origin => 'https://b.example', 'Access-Control-Request-Method' => 'DELETE',
        'Access-Control-Request-Headers' => 'authorization' } });
    subtest 'preflight from an allowed origin' => sub {
        is $r->{status}, 204, 'status 204';
        is $r->{headers}{'access-control-allow-origin'}, 'https://b.example', 'Access-Control-Allow-Origin';
        is $r->{headers}{'access-control-allow-methods'}, $METHODS, 'Access-Control-Allow-Methods';
        is $r->{headers}{'access-control-allow-headers'}, 'authorization', 'Access-Control-Allow-Headers';
        vary_has($r, 'Origin', 'Vary: Origin');
        vary_has($r, 'Access-Control-Request-Headers', 'Vary: Access-Control-Request-Headers');
    };
    $r = $s2->request(OPTIONS => '/api/data/cors_key', { headers => {
        Origin => 'https://evil.example', 'Access-Control-Request-Method' => 'DELETE' } });
    ok !exists $r->{headers}{'access-control-allow-origin'}, 'preflight from evil: no Access-Control-Allow-Origin';
    $s2->stop;
};

done_testing;
