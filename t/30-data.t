# The data routes: POST /api/data, GET/PUT/DELETE /api/data/{key}. Success
# bodies and Location, values of every JSON type round-tripping with their
# types, keys with any bytes round-tripping through the URL (decoded once from
# the raw URI), INVALID_KEY, INVALID_VALUE (value_max), KEY_EXISTS,
# KEY_NOT_FOUND, and per-user isolation (API.md "Data model").
use strict;
use warnings;
use utf8;
use B ();
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag kpath show);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';


my $s = KVTest->start;
my $A = $s->new_user('data_a');
my $B = $s->new_user('data_b');

sub post_kv {
    my ($u, $body, $st) = @_;
    return ($st || $s)->request(POST => '/api/data',
        { headers => ($st || $s)->auth($u->{token}), json => $body });
}

sub post_raw {
    my ($u, $text, $st) = @_;
    utf8::encode($text) if utf8::is_utf8($text);
    return ($st || $s)->request(POST => '/api/data', {
        headers => { %{ ($st || $s)->auth($u->{token}) }, 'Content-Type' => 'application/json' },
        body    => $text });
}

sub put_raw {
    my ($u, $path, $text, $st) = @_;
    utf8::encode($text) if utf8::is_utf8($text);
    return ($st || $s)->request(PUT => $path, {
        headers => { %{ ($st || $s)->auth($u->{token}) }, 'Content-Type' => 'application/json' },
        body    => $text });
}

sub req {
    my ($u, $method, $path, $json, $st) = @_;
    return ($st || $s)->request($method => $path, {
        headers => ($st || $s)->auth($u->{token}),
        defined $json ? (json => $json) : () });
}

sub stored_ok {
    my ($r, $key, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 201, 'status 201' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{location}, kpath($key), 'Location';
        json_is($r, { status => 'success', message => 'Data stored successfully.' }, 'whole body');
    };
}

sub value_is {
    my ($r, $key, $value, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, { status => 'success', data => { key => $key, value => $value } }, 'whole body');
    };
}

sub updated_ok {
    my ($r, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'whole body');
    };
}

sub deleted_ok {
    my ($r, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'whole body');
    };
}

subtest 'create, read, update, delete' => sub {
    stored_ok(post_kv($A, { key => 'greeting', value => 'hello' }), 'greeting', 'POST');
    value_is(req($A, GET => '/api/data/greeting'), 'greeting', 'hello', 'GET');
    updated_ok(req($A, PUT => '/api/data/greeting', { value => 'bye' }), 'PUT');
    value_is(req($A, GET => '/api/data/greeting'), 'greeting', 'bye', 'GET after PUT');
    updated_ok(req($A, PUT => '/api/data/greeting', { value => [ 1, { two => 2 } ] }), 'PUT another type');
    value_is(req($A, GET => '/api/data/greeting'), 'greeting', [ 1, { two => 2 } ], 'GET: new type');
    deleted_ok(req($A, DELETE => '/api/data/greeting'), 'DELETE');
    $s->error_is(req($A, GET => '/api/data/greeting'), 'KEY_NOT_FOUND', 'GET after DELETE');
    $s->error_is(req($A, DELETE => '/api/data/greeting'), 'KEY_NOT_FOUND', 'DELETE after DELETE');
    $s->error_is(req($A, PUT => '/api/data/greeting', { value => 1 }), 'KEY_NOT_FOUND', 'PUT after DELETE');
    stored_ok(post_kv($A, { key => 'greeting', value => 'again' }), 'greeting', 'POST again after DELETE');
    value_is(req($A, GET => '/api/data/greeting'), 'greeting', 'again', 'GET the re-created key');
};

subtest 'KEY_NOT_FOUND on a key never stored' => sub {
    $s->error_is(req($A, GET => '/api/data/never'), 'KEY_NOT_FOUND', 'GET');
    $s->error_is(req($A, PUT => '/api/data/never', { value => 1 }), 'KEY_NOT_FOUND', 'PUT');
    $s->error_is(req($A, DELETE => '/api/data/never'), 'KEY_NOT_FOUND', 'DELETE');
    $s->error_is(req($A, GET => '/api/data/never'), 'KEY_NOT_FOUND', 'PUT did not create it');
};

subtest 'KEY_EXISTS' => sub {
    stored_ok(post_kv($A, { key => 'once', value => { v => 1 } }), 'once', 'first POST');
    $s->error_is(post_kv($A, { key => 'once', value => { v => 2 } }), 'KEY_EXISTS', 'second POST');
    $s->error_is(post_kv($A, { key => 'once', value => 'other type' }), 'KEY_EXISTS', 'second POST, other type');
    value_is(req($A, GET => '/api/data/once'), 'once', { v => 1 }, 'old value unchanged');
    $s->error_is(post_kv($A, { key => 'once', value => undef }), 'INVALID_VALUE',
        'INVALID_VALUE before KEY_EXISTS');
    $s->error_is(post_kv($A, { key => '', value => undef }), 'INVALID_KEY',
        'INVALID_KEY before INVALID_VALUE');
};

subtest 'values keep their JSON type and structure' => sub {
    my @values = (
        [ 'string',            'data_value' ],
        [ 'empty string',      '' ],
        [ 'string "30"',       '30' ],
        [ 'string "true"',     'true' ],
        [ 'string "null"',     'null' ],
        [ 'zero',              0 ],
        [ 'integer',           42 ],
        [ 'negative integer',  -7 ],
        [ 'float',             3.14 ],
        [ 'negative float',    -0.5 ],
        [ 'small float',       1.5e-10 ],
        [ 'huge float',        1e300 ],
        [ 'true',              JSON::PP::true ],
        [ 'false',             JSON::PP::false ],
        [ 'empty object',      {} ],
        [ 'empty array',       [] ],
        [ 'nested',            { a => 1, b => [ 1, 2, { c => undef, d => [ [], {} ] } ],
                                 e => { f => 'g', h => JSON::PP::false } } ],
        [ 'array of every type', [ 1, '1', 1.25, JSON::PP::true, JSON::PP::false, undef, [], {} ] ],
        [ 'deep array',        [ [ [ [ [ [ [ [ 'deep' ] ] ] ] ] ] ] ] ],
        [ 'unicode string',    "snow ☃ clef 𝄞 é 中文 \x{2028} \x{feff}" ],
        [ 'escapes',           "quote \" backslash \\ slash / \b\f\n\r\t end" ],
        [ 'control characters allowed in values', "\x{1}\x{1f}\x{7f}\x{80}\x{9f}" ],
        [ 'json-looking string', '{"key":"value"}' ],
        [ 'object with unicode and empty member names', { '' => 1, 'ключ' => 'значение', 'a"b' => 'c\\d' } ],
    );
    my $i = 0;
    for (@values) {
        my ($name, $v) = @$_;
        my $key = 'type_' . $i++;
        stored_ok(post_kv($A, { key => $key, value => $v }), $key, "POST $name");
        value_is(req($A, GET => "/api/data/$key"), $key, $v, "GET $name");
    }
    # Every value again, through PUT onto one key.
    stored_ok(post_kv($A, { key => 'retyped', value => 0 }), 'retyped', 'POST retyped');
    for (@values) {
        my ($name, $v) = @$_;
        updated_ok(req($A, PUT => '/api/data/retyped', { value => $v }), "PUT $name");
        value_is(req($A, GET => '/api/data/retyped'), 'retyped', $v, "GET after PUT $name");
    }
};

subtest 'numbers round-trip as IEEE doubles' => sub {
    my @nums = (
        [ '12345678901234567890',   1.2345678901234567e19 ],
        [ '-12345678901234567890', -1.2345678901234567e19 ],
        [ '9007199254740993',       9007199254740992 ],
        [ '0.30000000000000004',    0.30000000000000004 ],
        [ '0.1',                    0.1 ],
        [ '1e21',                   1e21 ],
        [ '1.7976931348623157e308', 1.7976931348623157e308 ],
        [ '5e-324',                 5e-324 ],
        [ '2.5E+3',                 2500 ],
        [ '-0.0001',                -0.0001 ],
    );
    my $i = 0;
    for (@nums) {
        my ($text, $double) = @$_;
        my $key = 'num_' . $i++;
        stored_ok(post_raw($A, qq({"key":"$key","value":$text})), $key, "POST $text");
        my $r = req($A, GET => "/api/data/$key");
        value_is($r, $key, $double, "GET $text: a JSON number equal as a double");
        like $r->{body}, qr/"value"\s*:\s*-?[0-9]/, "$text comes back as a bare number";
    }
    $i = 0;
    for (@nums) {
        my ($text, $double) = @$_;
        my $key = 'num_' . $i++;
        updated_ok(put_raw($A, "/api/data/$key", qq({"value":[$text]})), "PUT [$text]");
        value_is(req($A, GET => "/api/data/$key"), $key, [$double], "GET [$text]");
    }
};

subtest 'INVALID_VALUE' => sub {
    stored_ok(post_kv($A, { key => 'keep', value => 'kept' }), 'keep', 'setup');
    my @bad = (
        [ 'missing',                   '{"key":"%s"}' ],
        [ 'null',                      '{"key":"%s","value":null}' ],
        [ '1e400',                     '{"key":"%s","value":1e400}' ],
        [ '-1e400',                    '{"key":"%s","value":-1e400}' ],
        [ '1e309 inside an array',     '{"key":"%s","value":[1,1e309]}' ],
        [ 'string holding \u0000',     '{"key":"%s","value":"ab\u0000cd"}' ],
        [ 'string ending in \u0000',   '{"key":"%s","value":"ab\u0000"}' ],
        [ '\u0000 nested in an object', '{"key":"%s","value":{"a":["x","y\u0000"]}}' ],
        [ '\u0000 in a member name',   '{"key":"%s","value":{"a\u0000b":1}}' ],
    );
    for (@bad) {
        my ($name, $fmt) = @$_;
        $s->error_is(post_raw($A, sprintf($fmt, 'newkey')), 'INVALID_VALUE', "POST: $name");
        my $put = $fmt =~ s/"key":"%s",?//r;
        $s->error_is(put_raw($A, '/api/data/keep', $put), 'INVALID_VALUE', "PUT: $name");
    }
    $s->error_is(req($A, GET => '/api/data/newkey'), 'KEY_NOT_FOUND', 'no refused POST created the key');
    value_is(req($A, GET => '/api/data/keep'), 'keep', 'kept', 'no refused PUT changed the value');
    $s->error_is(req($A, PUT => '/api/data/never', { key => 'never' }), 'INVALID_VALUE',
        'PUT of a missing key without value: INVALID_VALUE before KEY_NOT_FOUND');
};

subtest 'PUT takes the key from the URL only' => sub {
    stored_ok(post_kv($A, { key => 'url_key', value => 1 }), 'url_key', 'setup');
    updated_ok(req($A, PUT => '/api/data/url_key', { key => 'body_key', value => 2 }),
        'PUT with another key in the body');
    value_is(req($A, GET => '/api/data/url_key'), 'url_key', 2, 'the URL key was updated');
    $s->error_is(req($A, GET => '/api/data/body_key'), 'KEY_NOT_FOUND', 'the body key was not created');
    updated_ok(req($A, PUT => '/api/data/url_key', { key => 5, value => 3 }),
        'an invalid key field in the PUT body is ignored');
    updated_ok(req($A, PUT => '/api/data/url_key', { key => '', value => 4 }),
        'an empty key field in the PUT body is ignored');
    value_is(req($A, GET => '/api/data/url_key'), 'url_key', 4, 'value updated');
};

subtest 'INVALID_KEY in the body' => sub {
    my @bad = (
        [ 'missing',   { value => 1 } ],
        [ 'null',      { key => undef, value => 1 } ],
        [ 'a number',  { key => 5, value => 1 } ],
        [ 'true',      { key => JSON::PP::true, value => 1 } ],
        [ 'an array',  { key => ['k'], value => 1 } ],
        [ 'an object', { key => { k => 1 }, value => 1 } ],
        [ 'empty',     { key => '', value => 1 } ],
        [ '256 ASCII bytes',            { key => 'k' x 256, value => 1 } ],
        [ '256 bytes of two-byte chars', { key => 'é' x 128, value => 1 } ],
        [ '255 bytes + one four-byte char', { key => 'k' x 252 . '😀', value => 1 } ],
    );
    for my $c ("\x{0}", "\x{1}", "\t", "\n", "\r", "\x{1f}", "\x{7f}", "\x{80}", "\x{85}", "\x{9f}") {
        push @bad, [ sprintf('holding U+%04X', ord $c), { key => "a${c}b", value => 1 } ];
        push @bad, [ sprintf('only U+%04X', ord $c), { key => $c, value => 1 } ];
    }
    $s->error_is(post_kv($A, $_->[1]), 'INVALID_KEY', "key $_->[0]") for @bad;
    $s->error_is(post_raw($A, '{"key":"ab\u0000","value":1}'), 'INVALID_KEY', 'key with a \u0000 escape');
    $s->error_is(post_raw($A, '{"key":"\u0000ab","value":1}'), 'INVALID_KEY', 'key starting with \u0000');
    $s->error_is(post_raw($A, '{"key":"a\u007fb","value":1}'), 'INVALID_KEY', 'key with a \u007f escape');
    $s->error_is(post_raw($A, '{"key":"a\u0085b","value":1}'), 'INVALID_KEY', 'key with a \u0085 escape');
    $s->error_is(req($A, GET => '/api/data/a'), 'KEY_NOT_FOUND', 'a key truncated at NUL was not stored');
    $s->error_is(req($A, GET => '/api/data/ab'), 'KEY_NOT_FOUND', 'nor its prefix');

    for my $good ('k' x 255, 'é' x 127 . 'k', '😀' x 63 . 'kkk', "a\x{a0}b", "\x{100}", ' ', 'a b',
                  '-', '~', '...', '%', '%%', '%2F', '+', '/', '//', '?', '#', '&=;', "'\"\\",
                  'UPPER', 'upper') {
        stored_ok(post_kv($A, { key => $good, value => show($good) }), $good,
            'key ' . substr(show($good), 0, 40) . ' (' . length($good) . ' chars) accepted');
        value_is(req($A, GET => kpath($good)), $good, show($good), 'and read back through its URL');
    }
};

subtest 'keys are exact bytes' => sub {
    value_is(req($A, GET => '/api/data/UPPER'), 'UPPER', 'UPPER', 'UPPER');
    value_is(req($A, GET => '/api/data/upper'), 'upper', 'upper', 'upper is another key');
    $s->error_is(req($A, GET => '/api/data/Upper'), 'KEY_NOT_FOUND', 'Upper does not exist');
    stored_ok(post_kv($A, { key => "caf\x{e9}", value => 'precomposed' }), "caf\x{e9}", 'precomposed é');
    $s->error_is(req($A, GET => kpath("cafe\x{301}")), 'KEY_NOT_FOUND', 'decomposed é is another key');
    $s->error_is(req($A, GET => '/api/data/%2F%2F%2F'), 'KEY_NOT_FOUND', '/// is not // (no slash merging)');
    $s->error_is(req($A, GET => '/api/data/greeting/'), 'KEY_NOT_FOUND', 'a trailing slash is part of the key');
};

subtest 'URL keys are percent-decoded exactly once, from the raw URI' => sub {
    my $key = "a/b c%☃?#";
    stored_ok(post_kv($A, { key => $key, value => 'v1' }), $key, 'POST a/b c%☃?#');
    is kpath($key), '/api/data/a%2Fb%20c%25%E2%98%83%3F%23', 'the expected Location';
    value_is(req($A, GET => kpath($key)), $key, 'v1', 'GET');
    updated_ok(req($A, PUT => kpath($key), { value => 'v2' }), 'PUT');
    value_is(req($A, GET => kpath($key)), $key, 'v2', 'GET after PUT');
    value_is(req($A, GET => '/api/data/a%2fb%20c%25%e2%98%83%3f%23'), $key, 'v2',
        'lower-case hex escapes decode the same');
    value_is(req($A, GET => '/api/data/a/b%20c%25%E2%98%83%3F%23'), $key, 'v2',
        'a literal slash is part of the key');
    deleted_ok(req($A, DELETE => kpath($key)), 'DELETE');
    $s->error_is(req($A, GET => kpath($key)), 'KEY_NOT_FOUND', 'GET after DELETE');

    stored_ok(post_kv($A, { key => 'a%2F', value => 'percent' }), 'a%2F', 'POST key a%2F');
    value_is(req($A, GET => '/api/data/a%252F'), 'a%2F', 'percent', '/api/data/a%252F is key a%2F');
    $s->error_is(req($A, GET => '/api/data/a%2F'), 'KEY_NOT_FOUND', '/api/data/a%2F is key a/ (absent)');

    stored_ok(post_kv($A, { key => 'x/y', value => 'slash' }), 'x/y', 'POST key x/y');
    value_is(req($A, GET => '/api/data/x/y'), 'x/y', 'slash', '/api/data/x/y');
    value_is(req($A, GET => '/api/data/x%2Fy'), 'x/y', 'slash', '/api/data/x%2Fy');
    updated_ok(req($A, PUT => '/api/data/x/y', { value => 'slash2' }), 'PUT /api/data/x/y');
    deleted_ok(req($A, DELETE => '/api/data/x/y'), 'DELETE /api/data/x/y');

    stored_ok(post_kv($A, { key => 'p//q', value => 'double' }), 'p//q', 'POST key p//q');
    value_is(req($A, GET => '/api/data/p//q'), 'p//q', 'double', 'a double slash is not merged');
    $s->error_is(req($A, GET => '/api/data/p/q'), 'KEY_NOT_FOUND', 'p/q is another key');

    stored_ok(post_kv($A, { key => 'a+b', value => 'plus' }), 'a+b', 'POST key a+b');
    value_is(req($A, GET => '/api/data/a+b'), 'a+b', 'plus', '+ stays +');
    value_is(req($A, GET => '/api/data/a%2Bb'), 'a+b', 'plus', '%2B is +');
    stored_ok(post_kv($A, { key => 'c d', value => 'space' }), 'c d', 'POST key "c d"');
    $s->error_is(req($A, GET => '/api/data/c+d'), 'KEY_NOT_FOUND', '+ is not a space');
    value_is(req($A, GET => '/api/data/c%20d'), 'c d', 'space', '%20 is a space');

    value_is(req($A, GET => '/api/data/a+b?x=1&y=%zz'), 'a+b', 'plus', 'the query string is not part of the key');
    stored_ok(post_kv($A, { key => '%41', value => 'not A' }), '%41', 'POST key %41');
    value_is(req($A, GET => '/api/data/%2541'), '%41', 'not A', 'decoded once: %2541 is %41, not A');
    $s->error_is(req($A, GET => '/api/data/A'), 'KEY_NOT_FOUND', 'and A does not exist');
};

# nginx resolves dot segments in $uri; the key still comes from the raw URI,
# so these must reach the key route too.
subtest 'keys that look like dot segments' => sub {
    for my $key ('.', '..', '../x', 'a/../b', 'a/./b', './') {
        stored_ok(post_kv($A, { key => $key, value => "dots $key" }), $key, "POST key '$key'");
        value_is(req($A, GET => kpath($key)), $key, "dots $key", "GET its Location " . kpath($key));
        value_is(req($A, GET => kpath($key) =~ s/\./%2E/gr), $key, "dots $key", 'GET with the dots escaped');
    }
};

subtest 'INVALID_KEY in the URL' => sub {
    stored_ok(post_kv($A, { key => 'urlbad', value => 1 }), 'urlbad', 'setup');
    my @bad = (
        [ 'malformed escape %zz',   '/api/data/a%zz' ],
        [ 'lone % at the end',      '/api/data/a%' ],
        [ 'lone % inside',          '/api/data/a%-b' ],
        [ 'short escape %4',        '/api/data/a%4' ],
        [ 'half-hex escape %4g',    '/api/data/a%4g' ],
        [ '%00',                    '/api/data/a%00b' ],
        [ '%01',                    '/api/data/a%01' ],
        [ '%09 (tab)',              '/api/data/a%09' ],
        [ '%0A',                    '/api/data/a%0A' ],
        [ '%1F',                    '/api/data/%1F' ],
        [ '%7F (DEL)',              '/api/data/a%7F' ],
        [ '%C2%80 (U+0080)',        '/api/data/a%C2%80' ],
        [ '%C2%9F (U+009F)',        '/api/data/a%C2%9F' ],
        [ 'invalid UTF-8 %FF',      '/api/data/a%FF' ],
        [ 'lone continuation %80',  '/api/data/a%80' ],
        [ 'truncated UTF-8 %C3',    '/api/data/a%C3' ],
        [ 'truncated UTF-8 %E2%98', '/api/data/a%E2%98' ],
        [ 'overlong %C0%AF',        '/api/data/a%C0%AF' ],
        [ 'surrogate %ED%A0%80',    '/api/data/a%ED%A0%80' ],
        [ '256 bytes',              '/api/data/' . 'k' x 256 ],
        [ '256 bytes, escaped',     kpath('é' x 128) ],
    );
    for (@bad) {
        my ($name, $path) = @$_;
        $s->error_is(req($A, GET => $path), 'INVALID_KEY', "GET: $name");
        $s->error_is(req($A, PUT => $path, { value => 1 }), 'INVALID_KEY', "PUT: $name");
        $s->error_is(req($A, DELETE => $path), 'INVALID_KEY', "DELETE: $name");
    }
    $s->error_is(req($A, GET => kpath('j' x 255)), 'KEY_NOT_FOUND', '255 bytes: a valid key (absent here)');
    $s->error_is(req($A, GET => kpath('é' x 127 . 'j')), 'KEY_NOT_FOUND', '255 bytes escaped: valid');
    $s->error_is($s->request(GET => '/api/data/a%01', {}), 'INVALID_TOKEN', 'auth before the key check (%01)');
    $s->error_is($s->request(GET => '/api/data/' . 'k' x 256, {}), 'INVALID_TOKEN', 'auth before the key check (256 bytes)');
    value_is(req($A, GET => '/api/data/urlbad'), 'urlbad', 1, 'nothing changed');
};

subtest 'two users never see each other\'s data' => sub {
    stored_ok(post_kv($A, { key => 'shared', value => 'from A' }), 'shared', 'A stores shared');
    stored_ok(post_kv($B, { key => 'shared', value => { from => 'B' } }), 'shared',
        'B stores the same key: no KEY_EXISTS across users');
    value_is(req($A, GET => '/api/data/shared'), 'shared', 'from A', 'A reads its own');
    value_is(req($B, GET => '/api/data/shared'), 'shared', { from => 'B' }, 'B reads its own');

    stored_ok(post_kv($A, { key => 'a_private', value => 'mine' }), 'a_private', 'A stores a_private');
    $s->error_is(req($B, GET => '/api/data/a_private'), 'KEY_NOT_FOUND', 'B: GET a_private');
    $s->error_is(req($B, PUT => '/api/data/a_private', { value => 'stolen' }), 'KEY_NOT_FOUND', 'B: PUT a_private');
    $s->error_is(req($B, DELETE => '/api/data/a_private'), 'KEY_NOT_FOUND', 'B: DELETE a_private');
    value_is(req($A, GET => '/api/data/a_private'), 'a_private', 'mine', "A's value unchanged");

    updated_ok(req($B, PUT => '/api/data/shared', { value => 'B2' }), 'B updates shared');
    value_is(req($A, GET => '/api/data/shared'), 'shared', 'from A', 'A unaffected by B\'s PUT');
    deleted_ok(req($B, DELETE => '/api/data/shared'), 'B deletes shared');
    value_is(req($A, GET => '/api/data/shared'), 'shared', 'from A', 'A unaffected by B\'s DELETE');
    $s->error_is(req($B, GET => '/api/data/shared'), 'KEY_NOT_FOUND', 'B\'s copy is gone');
};

subtest 'value size limit: default 1 MiB of JSON text' => sub {
    my $max = 1024 * 1024;
    stored_ok(post_kv($A, { key => 'big', value => 'x' x ($max - 2) }), 'big',
        'a string value of exactly 1 MiB serialized');
    my $r = req($A, GET => '/api/data/big');
    is $r->{status}, 200, 'GET big';
    ok ref $r->{json} eq 'HASH' && ($r->{json}{data}{value} // '') eq 'x' x ($max - 2),
        'the whole value comes back';
    $s->error_is(post_kv($A, { key => 'big2', value => 'x' x ($max - 1) }), 'INVALID_VALUE',
        '1 MiB + 1 byte: INVALID_VALUE');
    $s->error_is(req($A, PUT => '/api/data/big', { value => 'y' x ($max - 1) }), 'INVALID_VALUE',
        'PUT 1 MiB + 1 byte: INVALID_VALUE');
    $s->error_is(req($A, GET => '/api/data/big2'), 'KEY_NOT_FOUND', 'big2 not stored');
};

subtest 'value size limit: value_max => 1000' => sub {
    my $s2 = KVTest->start(value_max => 1000);
    my $u = $s2->new_user('small');
    stored_ok(post_kv($u, { key => 'k', value => 'x' x 998 }, $s2), 'k', '1000 bytes serialized: ok');
    $s2->error_is(post_kv($u, { key => 'k2', value => 'x' x 999 }, $s2), 'INVALID_VALUE', '1001 bytes: INVALID_VALUE');
    $s2->error_is(post_kv($u, { key => 'k2', value => [ ('x' x 100) x 10 ] }, $s2), 'INVALID_VALUE',
        'an array of 1031 bytes: INVALID_VALUE');
    $s2->error_is(req($u, PUT => '/api/data/k', { value => 'y' x 999 }, $s2), 'INVALID_VALUE',
        'PUT 1001 bytes: INVALID_VALUE');
    value_is(req($u, GET => '/api/data/k', undef, $s2), 'k', 'x' x 998, 'old value kept');
    updated_ok(req($u, PUT => '/api/data/k', { value => 'z' x 998 }, $s2), 'PUT 1000 bytes: ok');
    stored_ok(post_raw($u, '{"key":"spaced","value":[1,' . ' ' x 2000 . '2]}', $s2), 'spaced',
        'the limit applies to the serialized value, not to its whitespace');
    value_is(req($u, GET => '/api/data/spaced', undef, $s2), 'spaced', [ 1, 2 ], 'GET spaced');
    $s2->stop;
};

done_testing;
