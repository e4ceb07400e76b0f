# A trailing slash (API.md, Transport): as in Express's default routing,
# /api/register/ and /api/token/ are the routes without the slash, with
# the same answers, the same Allow on a wrong method, the same preflight
# and the same rate limit (nginx sends them to the bcrypt pool);
# /api/data/ is the collection /api/data, and under it a key may end in
# a slash.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use KVTest qw(json_is kpath);

my $CT = 'application/json; charset=utf-8';
my $s = KVTest->start;
my $u = $s->new_user('slash');
my $AUTH = $s->auth($u->{token});

# Status, the headers that matter and the whole body.
sub answer_is {
    my ($r, $status, $body, $name) = @_;
    subtest $name => sub {
        is $r->{status}, $status, "status $status";
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control';
        is $r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin';
        json_is($r, $body, 'body');
    };
}

subtest 'POST /api/register/ registers' => sub {
    my $name = "slash_reg_$$";
    my $r = $s->request(POST => '/api/register/', { json => { username => $name,
        email => "$name\@example.com", password => 'correct horse', full_name => 'S', age => 30 } });
    my $id = $r->{json} && $r->{json}{data} ? $r->{json}{data}{user_id} : undef;
    like $id // '', qr/^[1-9][0-9]*$/, 'a user_id';
    answer_is($r, 201, { status => 'success', message => 'User successfully registered!',
        data => { user_id => $id, username => $name, email => "$name\@example.com",
                  full_name => 'S', age => 30, gender => undef } }, 'the answer of /api/register');
    $s->error_is($s->request(POST => '/api/register/', { json => { username => $name,
        email => "other_$name\@example.com", password => 'correct horse', full_name => 'S' } }),
        'USERNAME_EXISTS', 'the same user table');
    $s->error_is($s->request(POST => '/api/register/', { json => {} }), 'INVALID_REQUEST',
        'the same validation');
};

subtest 'POST and DELETE /api/token/' => sub {
    my $r = $s->request(POST => '/api/token/', { json => { username => $u->{username},
        password => $u->{password} } });
    my $tok = $r->{json} && $r->{json}{data} ? $r->{json}{data}{access_token} : undef;
    like $tok // '', qr/^[A-Za-z0-9_-]{43}$/, 'an access token';
    answer_is($r, 200, { status => 'success', message => 'Access token generated successfully.',
        data => KVTest::token_data($r) },
        'the answer of /api/token');
    $s->error_is($s->request(POST => '/api/token/', { json => { username => $u->{username} } }),
        'MISSING_FIELDS', 'the same validation');
    $s->error_is($s->request(POST => '/api/token/', { json => { username => $u->{username},
        password => 'wrong password' } }), 'INVALID_CREDENTIALS', 'the same check');

    my $T = $s->auth($tok);
    answer_is($s->request(GET => '/api/data', { headers => $T }), 200,
        { status => 'success', data => { items => [], next_cursor => undef } }, 'the token works');
    answer_is($s->request(DELETE => '/api/token/', { headers => $T }), 200,
        { status => 'success', message => 'Access token revoked.' }, 'DELETE /api/token/ logs out');
    $s->error_is($s->request(DELETE => '/api/token/', { headers => $T }), 'INVALID_TOKEN',
        'the revoked token is refused');
};

subtest 'a wrong method: 405 with the Allow of the path' => sub {
    my @cases = (
        [ '/api/register/', 'POST, OPTIONS', qw(GET PUT DELETE PATCH) ],
        [ '/api/token/',    'POST, DELETE, OPTIONS', qw(GET PUT PATCH) ],
        [ '/api/health/',   'GET, HEAD, OPTIONS', qw(POST PUT DELETE) ],
    );
    for (@cases) {
        my ($p, $allow, @methods) = @$_;
        for my $m (@methods) {
            my $r = $s->request($m => $p, { headers => $AUTH, json => {} });
            $s->error_is($r, 'METHOD_NOT_ALLOWED', "$m $p");
            is $r->{headers}{allow}, $allow, "$m $p: Allow: $allow";
        }
    }
};

subtest 'GET /api/health/' => sub {
    answer_is($s->request(GET => '/api/health/'), 200,
        { status => 'success', data => { database => 'up' } }, 'the health answer');
    my $r = $s->request(HEAD => '/api/health/');
    is $r->{status}, 200, 'HEAD: 200';
    is $r->{body}, '', 'HEAD: no body';
};

subtest 'OPTIONS is the preflight' => sub {
    for my $p ('/api/register/', '/api/token/') {
        my $r = $s->request(OPTIONS => $p, { headers => { Origin => 'https://app.example',
            'Access-Control-Request-Method' => 'POST',
            'Access-Control-Request-Headers' => 'content-type' } });
        subtest "OPTIONS $p" => sub {
            is $r->{status}, 204, 'status 204';
            is $r->{body}, '', 'no body';
            is $r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin';
            is $r->{headers}{'access-control-allow-methods'}, 'GET,HEAD,PUT,PATCH,POST,DELETE',
                'Access-Control-Allow-Methods';
            is $r->{headers}{'access-control-allow-headers'}, 'content-type', 'Access-Control-Allow-Headers';
        };
    }
};

subtest '/api/data/ is the collection' => sub {
    my $r = $s->request(POST => '/api/data/', { headers => $AUTH, json => { key => 'a', value => [1] } });
    answer_is($r, 201, { status => 'success', message => 'Data stored successfully.' }, 'POST /api/data/ stores');
    is $r->{headers}{location}, '/api/data/a', 'Location: /api/data/a';
    like $r->{headers}{etag} // '', qr/^"[0-9a-f]{16}"$/, 'an ETag';
    $s->error_is($s->request(POST => '/api/data/', { headers => $AUTH, json => { key => 'a', value => 2 } }),
        'KEY_EXISTS', 'POST /api/data/ again: KEY_EXISTS');
    $s->error_is($s->request(POST => '/api/data/', { headers => $AUTH, json => { value => 2 } }),
        'INVALID_KEY', 'POST /api/data/ without a key');
    $s->request(POST => '/api/data', { headers => $AUTH, json => { key => 'b', value => 'two' } });
    answer_is($s->request(GET => '/api/data/', { headers => $AUTH }), 200,
        { status => 'success', data => { items => [ { key => 'a', value => [1] }, { key => 'b', value => 'two' } ],
                                         next_cursor => undef } }, 'GET /api/data/ lists');
    answer_is($s->request(GET => '/api/data/?prefix=b', { headers => $AUTH }), 200,
        { status => 'success', data => { items => [ { key => 'b', value => 'two' } ], next_cursor => undef } },
        'GET /api/data/?prefix=b: the query too');
    $s->error_is($s->request(GET => '/api/data/?limit=0', { headers => $AUTH }), 'INVALID_QUERY',
        'a bad query: INVALID_QUERY');
    $s->error_is($s->request(GET => '/api/data/'), 'INVALID_TOKEN', 'without a token: INVALID_TOKEN');
    my $h = $s->request(HEAD => '/api/data/', { headers => $AUTH });
    is $h->{status}, 200, 'HEAD /api/data/: 200';
    is $h->{body}, '', 'HEAD: no body';
    for my $m (qw(PUT DELETE PATCH)) {
        $r = $s->request($m => '/api/data/', { headers => $AUTH, json => { value => 1 } });
        $s->error_is($r, 'METHOD_NOT_ALLOWED', "$m /api/data/");
        is $r->{headers}{allow}, 'POST, GET, HEAD, OPTIONS', "$m /api/data/: the Allow of /api/data";
    }
    answer_is($s->request(GET => '/api/data/a', { headers => $AUTH }), 200,
        { status => 'success', data => { key => 'a', value => [1] } }, 'nothing else changed');
};

subtest 'under /api/data/ a key may end in a slash' => sub {
    my $r = $s->request(PUT => '/api/data/k/', { headers => $AUTH, json => { value => 1 } });
    $s->error_is($r, 'KEY_NOT_FOUND', 'PUT /api/data/k/: the key k/, absent');
    $r = $s->request(POST => '/api/data', { headers => $AUTH, json => { key => 'k/', value => 'slash' } });
    is $r->{status}, 201, 'POST key k/';
    is $r->{headers}{location}, kpath('k/'), 'Location ' . kpath('k/');
    for my $p ('/api/data/k/', kpath('k/')) {
        answer_is($s->request(GET => $p, { headers => $AUTH }), 200,
            { status => 'success', data => { key => 'k/', value => 'slash' } }, "GET $p is the key k/");
    }
    $s->error_is($s->request(GET => '/api/data/k', { headers => $AUTH }), 'KEY_NOT_FOUND',
        'GET /api/data/k is another key');
    is $s->request(POST => '/api/data', { headers => $AUTH, json => { key => '/', value => 'root' } })->{status},
        201, 'POST key /';
    answer_is($s->request(GET => '/api/data//', { headers => $AUTH }), 200,
        { status => 'success', data => { key => '/', value => 'root' } }, 'GET /api/data//: the key /');
    answer_is($s->request(DELETE => '/api/data/k/', { headers => $AUTH }), 200,
        { status => 'success', message => 'Data deleted successfully.' }, 'DELETE /api/data/k/');
    $s->error_is($s->request(GET => kpath('k/'), { headers => $AUTH }), 'KEY_NOT_FOUND', 'k/ is gone');
};

subtest 'only one slash, and only at the end' => sub {
    for my $p ('/api/token/x', '/api/register/x', '/api/tokens/', '/api/token/x/') {
        $s->error_is($s->request(POST => $p, { json => {} }), 'NOT_FOUND', "POST $p");
    }
};

subtest 'the same rate limit: /api/token/ counts with /api/token' => sub {
    my $s2 = KVTest->start(auth_rate => '1r/m', auth_burst => 1);
    my $login = { json => { username => 'nobody_here', password => 'wrong password' } };
    $s2->error_is($s2->request(POST => '/api/token', $login), 'INVALID_CREDENTIALS', 'the first login');
    $s2->error_is($s2->request(POST => '/api/token/', $login), 'INVALID_CREDENTIALS', 'the burst');
    my $r = $s2->request(POST => '/api/token/', $login);
    $s2->error_is($r, 'TOO_MANY_REQUESTS', 'then 429, with the slash');
    is $r->{headers}{'retry-after'}, 60, 'Retry-After: 60';
    $s2->error_is($s2->request(POST => '/api/register/', { json => {} }), 'TOO_MANY_REQUESTS',
        'and for /api/register/');
    $s2->stop;
};

done_testing;
