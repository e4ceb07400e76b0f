# The envelope around every endpoint (API.md "Envelope"): Content-Type checks
# (415), body parsing (INVALID_JSON, duplicate keys, UTF-8, trailing
# garbage), unknown fields, 404 NOT_FOUND from the worker and from nginx, 405
# METHOD_NOT_ALLOWED with Allow, HEAD, and 413 at the configured body_max.
use strict;
use warnings;
use utf8;
use B ();
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag show);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';


my $s = KVTest->start;
my $U = $s->new_user('env');
my $AUTH = $s->auth($U->{token});

my $seq = 0;
sub uniq { $seq++; return sprintf '%s%03d', shift, $seq }

# A request with a raw body (bytes) and an explicit Content-Type (undef: no
# Content-Type header at all).
sub send_raw {
    my ($method, $path, $ctype, $bytes, %h) = @_;
    return $s->request($method => $path, {
        headers => { %h, defined $ctype ? ('Content-Type' => $ctype) : () },
        body    => $bytes });
}

sub reg_text {
    my $u = uniq('env_');
    return qq({"username":"$u","email":"$u\@example.com","password":"correct horse","full_name":"Env"});
}

sub status_is {
    my ($r, $status, $name) = @_;
    is $r->{status}, $status, $name or diag "body: $r->{body}";
}

my $ETAG_RE = qr/\A"[0-9a-f]{16}"\z/;

# The whole success answer of a data write, as API.md lists it: status,
# Content-Type, the headers of that answer and the whole body.
sub stored_is {
    my ($r, $k, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        status_is($r, 201, 'status 201');
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{location}, "/api/data/$k", 'Location';
        like $r->{headers}{etag} // '', $ETAG_RE, 'ETag';
        json_is($r, { status => 'success', message => 'Data stored successfully.' }, 'body');
    };
}

sub updated_is {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        status_is($r, 200, 'status 200');
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        like $r->{headers}{etag} // '', $ETAG_RE, 'ETag';
        json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'body');
    };
}

# GET of key $k answers its value $v.
sub read_is {
    my ($r, $k, $v, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        status_is($r, 200, 'status 200');
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        like $r->{headers}{etag} // '', $ETAG_RE, 'ETag';
        json_is($r, { status => 'success', data => { key => $k, value => $v } }, 'body');
    };
}

sub logged_in_is {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $tok = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data}{access_token} : undef;
    subtest $name => sub {
        status_is($r, 200, 'status 200');
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store';
        like $tok // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'access_token';
        json_is($r, { status => 'success', message => 'Access token generated successfully.',
                      data => KVTest::token_data($r) }, 'body');
    };
}

# A registration of reg_text() $text, and a login, answered in full.
sub registered_is {
    my ($r, $text, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $f = JSON::PP->new->utf8->decode($text);
    subtest $name => sub {
        status_is($r, 201, 'status 201');
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        my $id = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data}{user_id} : undef;
        like $id // '', qr/\A[1-9][0-9]*\z/, 'user_id';
        json_is($r, { status => 'success', message => 'User successfully registered!',
                      data => { user_id => defined $id ? "$id" : 'missing', username => $f->{username},
                                email => $f->{email}, full_name => $f->{full_name}, age => undef,
                                gender => undef } }, 'body');
    };
}

{
    my $r = $s->request(POST => '/api/data', { headers => $AUTH, json => { key => 'there', value => 'v' } });
    stored_is($r, 'there', 'setup: key "there" stored');
}

subtest 'Content-Type accepted' => sub {
    for my $ct ('application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8',
                'application/json; charset=Utf-8', 'application/json; foo=bar',
                'application/vnd.api+json', 'application/merge-patch+json; charset=utf-8',
                'APPLICATION/JSON', 'Application/Json; Charset=UTF-8') {
        my $k = uniq('ct');
        stored_is(send_raw(POST => '/api/data', $ct, qq({"key":"$k","value":1}), %$AUTH), $k,
            "POST /api/data with '$ct'");
        updated_is(send_raw(PUT => "/api/data/$k", $ct, '{"value":2}', %$AUTH),
            "PUT /api/data/$k with '$ct'");
        read_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), $k, 2, "GET $k: the PUT's value");
        my $reg = reg_text();
        registered_is(send_raw(POST => '/api/register', $ct, $reg), $reg, "POST /api/register with '$ct'");
        logged_in_is(send_raw(POST => '/api/token', $ct,
                              qq({"username":"$U->{username}","password":"$U->{password}"})),
            "POST /api/token with '$ct'");
    }
};

subtest 'UNSUPPORTED_MEDIA_TYPE' => sub {
    for my $ct (undef, '', 'text/plain', 'text/json', 'application/x-www-form-urlencoded',
                'multipart/form-data; boundary=xyz', 'application/json; charset=latin1',
                'application/json; charset=utf-16', 'application/jsonx', 'application/json-seq',
                'application/xml', 'json', '*/*') {
        my $show = defined $ct ? "'$ct'" : 'no Content-Type';
        my $k = uniq('bad_ct');
        $s->error_is(send_raw(POST => '/api/data', $ct, qq({"key":"$k","value":1}), %$AUTH),
            'UNSUPPORTED_MEDIA_TYPE', "POST /api/data, $show");
        $s->error_is(send_raw(PUT => '/api/data/there', $ct, '{"value":"changed"}', %$AUTH),
            'UNSUPPORTED_MEDIA_TYPE', "PUT /api/data/there, $show");
        $s->error_is(send_raw(POST => '/api/register', $ct, reg_text()),
            'UNSUPPORTED_MEDIA_TYPE', "POST /api/register, $show");
        $s->error_is(send_raw(POST => '/api/token', $ct,
                              qq({"username":"$U->{username}","password":"$U->{password}"})),
            'UNSUPPORTED_MEDIA_TYPE', "POST /api/token, $show");
        $s->error_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), 'KEY_NOT_FOUND',
            "nothing stored ($show)");
    }
    my $r = $s->request(GET => '/api/data/there', { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => 'there', value => 'v' } }, 'no refused PUT changed "there"');
};

subtest 'order: auth, then Content-Type, then body, then fields' => sub {
    my $r = send_raw(POST => '/api/data', 'text/plain', 'not json');
    $s->error_is($r, 'INVALID_TOKEN', 'no token + bad Content-Type + bad body: INVALID_TOKEN');
    $s->error_is(send_raw(PUT => '/api/data/there', 'text/plain', 'not json'), 'INVALID_TOKEN',
        'PUT: no token first');
    $s->error_is(send_raw(POST => '/api/data', 'text/plain', 'not json', %$AUTH), 'UNSUPPORTED_MEDIA_TYPE',
        'bad Content-Type + bad body: 415');
    $s->error_is(send_raw(POST => '/api/register', 'text/plain', '{'), 'UNSUPPORTED_MEDIA_TYPE',
        'register: 415 before INVALID_JSON');
    $s->error_is(send_raw(POST => '/api/data', 'application/json', '{"key":', %$AUTH), 'INVALID_JSON',
        'bad body: INVALID_JSON before any field check');
    $s->error_is(send_raw(POST => '/api/register', 'application/json', '{"username":"x","username":"y"}'),
        'INVALID_JSON', 'register: INVALID_JSON before INVALID_REQUEST');
    $s->error_is(send_raw(POST => '/api/token', 'application/json', '[]'),
        'INVALID_JSON', 'token: INVALID_JSON before MISSING_FIELDS');
};

# The data statements check the token as they read or write (one round
# trip); a request that fails before any statement ran has its token
# checked then.  Either way a token that is not valid is answered first,
# whatever else is wrong, and changes nothing.  (Not a body over body_max:
# nginx answers that 413 itself, before any worker sees the request, as
# API.md allows.)
subtest 'a well-formed token that is not valid: INVALID_TOKEN before every other error' => sub {
    my $k = uniq('tok');
    my $r = $s->request(POST => '/api/data', { headers => $AUTH, json => { key => $k, value => 'kept' } });
    stored_is($r, $k, 'setup: a key');
    my $etag = $r->{headers}{etag} // '';
    (my $other = $etag) =~ s/[0-9a-f](?=[^0-9a-f]*$)/$& eq '0' ? '1' : '0'/e;
    isnt $other, $etag, "another well-formed ETag ($other)";

    my %tok = (unknown => 'A' x 43);
    my $login = sub {
        my $r = $s->request(POST => '/api/token', { json => { username => $U->{username}, password => $U->{password} } });
        return $r->{json}{data}{access_token};
    };
    $tok{revoked} = $login->();
    status_is($s->request(DELETE => '/api/token', { headers => $s->auth($tok{revoked}) }), 200, 'setup: revoke');
    $tok{expired} = $login->();
    $s->sql("UPDATE tokens SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
        . "WHERE token_hash = UNHEX(SHA2('$tok{expired}', 256))");
    $s->error_is($s->request(GET => "/api/data/$k", { headers => $s->auth($tok{expired}) }),
        'INVALID_TOKEN', 'setup: the expired token is refused');

    for my $which (sort keys %tok) {
        my %h = %{ $s->auth($tok{$which}) };
        my @cases = (
            [ 'POST, text/plain',             send_raw(POST => '/api/data', 'text/plain', 'not json', %h) ],
            [ 'POST, bad JSON',               send_raw(POST => '/api/data', $CT, '{"key":', %h) ],
            [ 'POST, empty key',              send_raw(POST => '/api/data', $CT, '{"key":"","value":1}', %h) ],
            [ 'POST, no value',               send_raw(POST => '/api/data', $CT, qq({"key":"${k}n"}), %h) ],
            [ 'POST, an existing key',        send_raw(POST => '/api/data', $CT, qq({"key":"$k","value":1}), %h) ],
            [ 'POST, a new key',              send_raw(POST => '/api/data', $CT, qq({"key":"${k}n","value":1}), %h) ],
            [ 'PUT',                          send_raw(PUT => "/api/data/$k", $CT, '{"value":"x"}', %h) ],
            [ 'PUT, bad value',               send_raw(PUT => "/api/data/$k", $CT, '{"value":}', %h) ],
            [ 'PUT, a missing key',           send_raw(PUT => "/api/data/${k}n", $CT, '{"value":"x"}', %h) ],
            [ 'PUT, If-Match: another ETag',  send_raw(PUT => "/api/data/$k", $CT, '{"value":"x"}', %h, 'If-Match' => $other) ],
            [ 'PUT, If-Match: its ETag',      send_raw(PUT => "/api/data/$k", $CT, '{"value":"x"}', %h, 'If-Match' => $etag) ],
            [ 'PUT, a key too long',          send_raw(PUT => '/api/data/' . 'a' x 300, $CT, '{"value":"x"}', %h) ],
            [ 'GET',                          $s->request(GET => "/api/data/$k", { headers => \%h }) ],
            [ 'GET, If-None-Match: its ETag', $s->request(GET => "/api/data/$k", { headers => { %h, 'If-None-Match' => $etag } }) ],
            [ 'GET, a missing key',           $s->request(GET => "/api/data/${k}n", { headers => \%h }) ],
            [ 'GET, a key too long',          $s->request(GET => '/api/data/' . 'a' x 300, { headers => \%h }) ],
            [ 'HEAD',                         $s->request(HEAD => "/api/data/$k", { headers => \%h }) ],
            [ 'list, limit=0',                $s->request(GET => '/api/data?limit=0', { headers => \%h }) ],
            [ 'list',                         $s->request(GET => '/api/data', { headers => \%h }) ],
            [ 'DELETE',                       $s->request(DELETE => "/api/data/$k", { headers => \%h }) ],
            [ 'DELETE, If-Match: another',    $s->request(DELETE => "/api/data/$k", { headers => { %h, 'If-Match' => $other } }) ],
            [ 'DELETE, a missing key',        $s->request(DELETE => "/api/data/${k}n", { headers => \%h }) ],
            [ 'DELETE /api/token',            $s->request(DELETE => '/api/token', { headers => \%h }) ],
        );
        for my $c (@cases) {
            if ($c->[0] eq 'HEAD') {
                is $c->[1]{status}, 401, "$which token, HEAD: 401";
                is $c->[1]{body}, '', "$which token, HEAD: no body";
                next;
            }
            $s->error_is($c->[1], 'INVALID_TOKEN', "$which token, $c->[0]");
        }
    }
    $r = $s->request(GET => "/api/data/$k", { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => $k, value => 'kept' } }, 'the key is unchanged');
    is $r->{headers}{etag}, $etag, 'and so is its ETag';
    $s->error_is($s->request(GET => "/api/data/${k}n", { headers => $AUTH }), 'KEY_NOT_FOUND',
        'no key was created');
};

subtest 'GET and DELETE ignore the body and its Content-Type' => sub {
    my $k = uniq('ign');
    stored_is($s->request(POST => '/api/data', { headers => $AUTH, json => { key => $k, value => 1 } }), $k, 'setup');
    my $r = send_raw(GET => "/api/data/$k", 'text/plain', 'garbage {', %$AUTH);
    read_is($r, $k, 1, 'GET with a text/plain garbage body');
    $r = send_raw(GET => "/api/data/$k", 'application/json', '[1,', %$AUTH);
    read_is($r, $k, 1, 'GET with an invalid JSON body');
    $r = send_raw(DELETE => "/api/data/$k", 'application/xml', '<x/>', %$AUTH);
    status_is($r, 200, 'DELETE with an XML body');
    is $r->{headers}{'content-type'}, $CT, 'DELETE: Content-Type';
    json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'DELETE body');
};

my @invalid_json = (
    [ 'empty body',                 '' ],
    [ 'only whitespace',            "  \r\n\t" ],
    [ 'top-level array',            '[{"key":"K","value":1}]' ],
    [ 'empty array',                '[]' ],
    [ 'top-level string',           '"K"' ],
    [ 'top-level number',           '1' ],
    [ 'top-level null',             'null' ],
    [ 'top-level true',             'true' ],
    [ 'unclosed object',            '{"key":"K","value":1' ],
    [ 'only {',                     '{' ],
    [ 'trailing garbage',           '{"key":"K","value":1} x' ],
    [ 'two objects',                '{"key":"K","value":1}{}' ],
    [ 'trailing comma',             '{"key":"K","value":1,}' ],
    [ 'single quotes',              q({'key':'K','value':1}) ],
    [ 'unquoted names',             '{key:"K",value:1}' ],
    [ 'NaN',                        '{"key":"K","value":NaN}' ],
    [ 'Infinity',                   '{"key":"K","value":Infinity}' ],
    [ 'leading zero',               '{"key":"K","value":01}' ],
    [ 'bare decimal point',         '{"key":"K","value":1.}' ],
    [ 'plus sign',                  '{"key":"K","value":+1}' ],
    [ 'hex number',                 '{"key":"K","value":0x10}' ],
    [ 'unterminated string',        '{"key":"K","value":"abc}' ],
    [ 'raw tab inside a string',    qq({"key":"K","value":"a\tb"}) ],
    [ 'raw newline inside a string', qq({"key":"K","value":"a\nb"}) ],
    [ 'bad escape',                 '{"key":"K","value":"\x"}' ],
    [ 'short \u escape',            '{"key":"K","value":"\u12"}' ],
    [ 'lone surrogate escape',      '{"key":"K","value":"\ud800"}' ],
    [ 'comment',                    '/* c */{"key":"K","value":1}' ],
    [ 'invalid UTF-8 \xFF in value', qq({"key":"K","value":"a\xFFb"}) ],
    [ 'invalid UTF-8 in key',       qq({"key":"K\xC3","value":1}) ],
    [ 'overlong UTF-8',             qq({"key":"K","value":"\xC0\xAF"}) ],
    [ 'UTF-8 surrogate',            qq({"key":"K","value":"\xED\xA0\x80"}) ],
    [ 'UTF-8 above U+10FFFF',       qq({"key":"K","value":"\xF4\x90\x80\x80"}) ],
    [ 'truncated UTF-8 at the end', qq({"key":"K","value":"\xE2\x98"}) ],
    [ 'invalid UTF-8 in an unknown member name', qq({"key":"K","value":1,"x\xFF":1}) ],
    [ 'invalid UTF-8 outside strings', qq(\xFF{"key":"K","value":1}) ],
    [ 'duplicate key',              '{"key":"K","key":"K2","value":1}' ],
    [ 'duplicate value',            '{"key":"K","value":1,"value":2}' ],
    [ 'same duplicate twice',       '{"key":"K","value":1,"key":"K"}' ],
    [ 'duplicate inside value',     '{"key":"K","value":{"x":1,"x":2}}' ],
    [ 'duplicate deep inside value', '{"key":"K","value":[{"y":[{"x":1,"z":0,"x":1}]}]}' ],
    [ 'duplicate unknown field',    '{"key":"K","value":1,"e":1,"e":1}' ],
    [ 'duplicate inside an unknown field', '{"key":"K","value":1,"e":{"z":1,"z":1}}' ],
    [ 'duplicate that differs by escape only', '{"key":"K","value":{"a":1,"\u0061":2}}' ],
);

subtest 'INVALID_JSON on POST /api/data' => sub {
    for (@invalid_json) {
        my ($name, $text) = @$_;
        my $k = uniq('inv');
        (my $t = $text) =~ s/"K"/"$k"/g;
        $t =~ s/"K\xC3"/"$k\xC3"/g;
        $s->error_is(send_raw(POST => '/api/data', 'application/json', $t, %$AUTH), 'INVALID_JSON',
            "$name: " . show($t));
        $s->error_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), 'KEY_NOT_FOUND',
            "$name: nothing stored");
    }
};

subtest 'INVALID_JSON on PUT /api/data/{key}' => sub {
    for (@invalid_json) {
        my ($name, $text) = @$_;
        (my $t = $text) =~ s/"K"/"there"/g;    # PUT ignores "key": the body stays invalid
        $s->error_is(send_raw(PUT => '/api/data/there', 'application/json', $t, %$AUTH), 'INVALID_JSON',
            "$name: " . show($t));
    }
    my $r = $s->request(GET => '/api/data/there', { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => 'there', value => 'v' } }, 'value unchanged');
};

subtest 'INVALID_JSON on /api/register and /api/token' => sub {
    for (@invalid_json) {
        my ($name, $text) = @$_;
        my $u = uniq('ij');
        # Valid fields go in front; the rest of the text keeps the body invalid.
        (my $t = $text) =~ s/\{/{"username":"$u","email":"$u\@example.com","full_name":"F","password":"correct horse",/;
        $s->error_is(send_raw(POST => '/api/register', 'application/json', $t), 'INVALID_JSON',
            "register, $name: " . show($t));
        ($t = $text) =~ s/\{/{"username":"$U->{username}","password":"$U->{password}",/;
        $s->error_is(send_raw(POST => '/api/token', 'application/json', $t), 'INVALID_JSON',
            "token, $name: " . show($t));
    }
    my $u = uniq('dup');
    $s->error_is(send_raw(POST => '/api/register', 'application/json',
        qq({"username":"$u","email":"$u\@example.com","password":"correct horse","full_name":"F","age":30,"age":31})),
        'INVALID_JSON', 'register: duplicate age');
    $s->error_is(send_raw(POST => '/api/token', 'application/json',
        qq({"username":"$U->{username}","password":"$U->{password}","password":"$U->{password}"})),
        'INVALID_JSON', 'token: the same password twice');
    is $s->sql("SELECT COUNT(*) FROM users WHERE username LIKE 'ij%' OR username LIKE 'dup%'")->[0][0], 0,
        'no user was created by a refused body';
};

subtest 'whitespace around the body is fine' => sub {
    my $k = uniq('ws');
    stored_is(send_raw(POST => '/api/data', 'application/json', qq( \r\n\t{ "key" : "$k" , "value" : [ 1 , 2 ] } \r\n\t), %$AUTH),
        $k, 'POST with whitespace everywhere');
    my $r = $s->request(GET => "/api/data/$k", { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => $k, value => [ 1, 2 ] } }, 'value read back');
    updated_is(send_raw(PUT => "/api/data/$k", 'application/json', qq(\n{"value":3}\n), %$AUTH), 'PUT with newlines');
    read_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), $k, 3, 'the PUT\'s value read back');
};

# A body nests at most 256 levels, its own object included
# (docs/decisions.md "Keys and values"): a value 255 levels deep is a
# value like any other, stored and read back; one level more is
# INVALID_JSON, and so is any depth beyond, which must not crash a worker.
subtest 'nesting: 256 levels are a value, 257 are INVALID_JSON' => sub {
    my $arrays = sub { my $n = shift; ('[' x $n) . (']' x $n) };
    my $objects = sub { my $n = shift; ('{"a":' x ($n - 1)) . '{}' . ('}' x ($n - 1)) };
    my $J = JSON::PP->new->utf8->max_depth(1000);
    # is_deeply recurses once per level.
    local $SIG{__WARN__} = sub { warn @_ unless $_[0] =~ /^Deep recursion/ };
    for my $kind ([ arrays => $arrays ], [ objects => $objects ]) {
        my ($what, $make) = @$kind;
        my $k = uniq('deep');
        my $text = $make->(255);
        my $v = $J->decode($text);
        stored_is(send_raw(POST => '/api/data', 'application/json', qq({"key":"$k","value":$text}), %$AUTH),
            $k, "POST: a value of 255 nested $what (256 levels with the body)");
        read_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), $k, $v, "GET: the 255 nested $what");
        $s->error_is(send_raw(PUT => "/api/data/$k", 'application/json', '{"value":' . $make->(256) . '}', %$AUTH),
            'INVALID_JSON', "PUT: 256 nested $what (257 levels)");
        updated_is(send_raw(PUT => "/api/data/$k", 'application/json', '{"value":[' . $make->(254) . ']}', %$AUTH),
            "PUT: 255 levels again, one of them a new array");
        read_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), $k, [ $J->decode($make->(254)) ],
            'GET: the PUT\'s value');
        my $k2 = uniq('deep');
        $s->error_is(send_raw(POST => '/api/data', 'application/json', qq({"key":"$k2","value":) . $make->(256) . '}', %$AUTH),
            'INVALID_JSON', "POST: a value of 256 nested $what (257 levels)");
        $s->error_is($s->request(GET => "/api/data/$k2", { headers => $AUTH }), 'KEY_NOT_FOUND', 'not stored');
    }
    my $k = uniq('deep');
    $s->error_is(send_raw(POST => '/api/data', 'application/json', qq({"key":"$k","value":) . $arrays->(100000) . '}', %$AUTH),
        'INVALID_JSON', 'POST: 100000 nested arrays');
    $s->error_is($s->request(GET => "/api/data/$k", { headers => $AUTH }), 'KEY_NOT_FOUND', 'not stored');
    read_is($s->request(GET => '/api/data/there', { headers => $AUTH }), 'there', 'v', 'the stack still answers');
};

subtest 'unknown fields are ignored' => sub {
    my $k = uniq('unk');
    my $r = $s->request(POST => '/api/data', { headers => $AUTH,
        json => { key => $k, value => 'v', extra => { nested => [ 1, 2 ] }, user_id => 1, status => 'x' } });
    stored_is($r, $k, 'POST with unknown fields');
    $r = $s->request(PUT => "/api/data/$k", { headers => $AUTH, json => { value => 'w', version => 7, owner => 'x' } });
    updated_is($r, 'PUT with unknown fields');
    $r = $s->request(GET => "/api/data/$k", { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => $k, value => 'w' } }, 'only key and value are kept');
};

subtest 'NOT_FOUND' => sub {
    for my $p ('/api/nope', '/api/', '/api', '/api/registerx', '/api/register/x', '/api/tokens',
               '/api/token/x', '/api/datax', '/api/datax/k', '/api/data2/k', '/api/v1/data/k',
               '/api/nope?x=1') {
        $s->error_is($s->request(GET => $p, {}), 'NOT_FOUND', "GET $p (no auth)");
        $s->error_is($s->request(GET => $p, { headers => $AUTH }), 'NOT_FOUND', "GET $p (auth)");
        $s->error_is(send_raw(POST => $p, 'application/json', '{"key":"k","value":1}', %$AUTH),
            'NOT_FOUND', "POST $p");
        $s->error_is(send_raw(POST => $p, 'text/plain', 'garbage'), 'NOT_FOUND',
            "POST $p with a bad body: routing first");
        $s->error_is($s->request(DELETE => $p, {}), 'NOT_FOUND', "DELETE $p");
    }
    # '/' is the web console (t/88-console.t); nothing else outside /api/.
    for my $p ('/nope', '/index.html', '/apix', '/apix/register', '/register', '/data/k',
               '/api.json', '/static/x.js', '/ui/x.js', '/docsx') {
        $s->error_is($s->request(GET => $p, {}), 'NOT_FOUND', "GET $p (nginx)");
        $s->error_is(send_raw(POST => $p, 'application/json', '{}'), 'NOT_FOUND', "POST $p (nginx)");
    }
};

subtest 'METHOD_NOT_ALLOWED' => sub {
    my @cases = (
        [ '/api/register', 'POST, OPTIONS', qw(GET PUT DELETE PATCH) ],
        [ '/api/token',    'POST, DELETE, OPTIONS', qw(GET PUT PATCH) ],
        [ '/api/data',     'POST, GET, HEAD, OPTIONS', qw(PUT DELETE PATCH) ],
        [ '/api/data/there', 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS', qw(POST) ],
        [ '/api/data/no-such-key', 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS', qw(POST) ],
        [ '/api/data/a%2Fb%20c', 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS', qw(POST) ],
    );
    for (@cases) {
        my ($p, $allow, @methods) = @$_;
        for my $m (@methods) {
            for my $auth (0, 1) {
                my $r = send_raw($m => $p, 'application/json', '{"key":"x","value":1}', $auth ? %$AUTH : ());
                my $name = "$m $p" . ($auth ? ' (auth)' : ' (no auth)');
                $s->error_is($r, 'METHOD_NOT_ALLOWED', $name);
                is $r->{headers}{allow}, $allow, "$name: Allow";
            }
        }
    }
    my $r = $s->request(GET => '/api/data/there', { headers => $AUTH });
    json_is($r, { status => 'success', data => { key => 'there', value => 'v' } }, 'POST on a key changed nothing');
};

subtest 'HEAD on a key' => sub {
    my $r = $s->request(HEAD => '/api/data/there', { headers => $AUTH });
    is $r->{status}, 200, 'HEAD existing key: 200';
    is $r->{body}, '', 'no body';
    is $r->{headers}{'content-type'}, $CT, 'Content-Type as for GET';
    $r = $s->request(HEAD => '/api/data/no-such-key', { headers => $AUTH });
    is $r->{status}, 404, 'HEAD missing key: 404';
    is $r->{body}, '', 'no body';
    $r = $s->request(HEAD => '/api/data/there', {});
    is $r->{status}, 401, 'HEAD without a token: 401';
    is $r->{body}, '', 'no body';
    like $r->{headers}{'www-authenticate'} // '', qr/\ABearer realm="kvapi"/, 'WWW-Authenticate';
};

subtest 'PAYLOAD_TOO_LARGE at body_max' => sub {
    my $s2 = KVTest->start(body_max => 2048, value_max => 1000);
    my $u = $s2->new_user('big');
    my %auth = %{ $s2->auth($u->{token}) };
    my $fit = sub {    # a valid body of exactly $n bytes, padded with spaces
        my ($n, $k) = @_;
        my $t = qq({"key":"$k","value":"v"});
        return $t . ' ' x ($n - length $t);
    };
    my $r = $s2->request(POST => '/api/data',
        { headers => { %auth, 'Content-Type' => 'application/json' }, body => $fit->(2048, 'k1') });
    is $r->{status}, 201, '2048 bytes: accepted' or diag $r->{body};
    for my $n (2049, 4096, 100_000) {
        $r = $s2->request(POST => '/api/data',
            { headers => { %auth, 'Content-Type' => 'application/json' }, body => $fit->($n, "k$n") });
        $s2->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/data, $n bytes");
        $r = $s2->request(PUT => '/api/data/k1',
            { headers => { %auth, 'Content-Type' => 'application/json' }, body => $fit->($n, 'k1') });
        $s2->error_is($r, 'PAYLOAD_TOO_LARGE', "PUT /api/data/k1, $n bytes");
        $r = $s2->request(POST => '/api/register',
            { headers => { 'Content-Type' => 'application/json' }, body => reg_text() . ' ' x $n });
        $s2->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/register, $n+ bytes");
        $r = $s2->request(POST => '/api/token',
            { headers => { 'Content-Type' => 'application/json' }, body => '{}' . ' ' x $n });
        $s2->error_is($r, 'PAYLOAD_TOO_LARGE', "POST /api/token, $n+ bytes");
    }
    $s2->error_is($s2->request(GET => '/api/data/k2049', { headers => \%auth }), 'KEY_NOT_FOUND',
        'nothing stored from an oversized body');
    $s2->stop;
};

done_testing;
