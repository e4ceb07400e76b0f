# PATCH /api/data/{key} (API.md "Data lifecycle", issue 15 and its
# decisions): an RFC 7396 JSON Merge Patch of the stored value.  Every
# example of RFC 7396 appendix A and the example of its section 3 (PUT the
# target, PATCH, then GET: the whole body and the value's exact compact
# text, members in their order, new ones appended), then the rest of the
# algorithm (scalars and arrays replace, null removes, objects merge at
# every depth, 200 levels deep too, beyond MariaDB's JSON_MERGE_PATCH), the
# stored text being exactly what a PUT of the result stores (numbers as
# doubles, escapes, whitespace dropped); 200 "Data updated successfully."
# with a new ETag that GET then gives; Content-Type
# application/merge-patch+json or application/json (others 415); a body
# of any JSON but top-level null (INVALID_VALUE), a \u0000 or a number
# that is no double (INVALID_VALUE), invalid JSON and duplicate member
# names anywhere (INVALID_JSON); auth first; KEY_NOT_FOUND on a missing key
# and another user's; If-Match (412, but 404 on a missing key); a result
# over value_max refused (INVALID_VALUE) while a large patch with a small
# result is fine; URL keys; 405 and Allow with PATCH in it; the preflight.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is kpath show);
use KVLife qw(:all);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $MP = 'application/merge-patch+json';
my $ALLOW_KEY = 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS';
my $J = JSON::PP->new->utf8->canonical->allow_nonref;
my $JO = JSON::PP->new->utf8->allow_nonref;

my $s = KVTest->start;
my $A = $s->new_user('patch_a');
my $B = $s->new_user('patch_b');

sub req { dreq($s, @_) }
sub get { req($_[0], GET => kpath($_[1])) }
# PATCH $key of $u with the raw text $patch (as $MP unless ct =>).
sub patch {
    my ($u, $key, $patch, %o) = @_;
    return req($u, PATCH => kpath($key), $patch, ct => exists $o{ct} ? $o{ct} : $MP, %o);
}
# PUT the raw JSON text $value as $u's $key.
sub put_text { my ($u, $key, $value) = @_; req($u, PUT => kpath($key), qq({"value":$value})) }
sub bytes_of { my $t = $_[0]; utf8::encode($t) if utf8::is_utf8($t); $t }

# One subtest: PUT $target (text) into $key, PATCH it with $patch, and the
# answer, the ETag, GET and the stored text all show $result (text).
sub merge_ok {
    my ($u, $key, $target, $patch, $result, $name, %o) = @_;
    subtest $name => sub {
        my $r = put_text($u, $key, $target);
        is $r->{status}, 200, "PUT the target $target" or diag $r->{body};
        my $before = $r->{headers}{etag} // 'none';
        my $etag = updated_ok(patch($u, $key, $patch, %o), "PATCH $patch");
        isnt $etag, $before, 'a new ETag';
        $r = get($u, $key);
        read_ok($r, $key, $JO->decode(bytes_of($result)), "GET: $result", text => bytes_of($result));
        is $r->{headers}{etag}, $etag, 'GET gives the ETag PATCH answered';
        is bytes_of(stored_text($s, $u, $key) // 'no row'), bytes_of($result), 'the stored text';
    };
}

stored_ok(req($A, POST => '/api/data', { key => 'rfc', value => 0 }), 'rfc', 'setup: POST rfc');

subtest 'RFC 7396 appendix A: every example' => sub {
    my @rfc = (
        [ '{"a":"b"}',          '{"a":"c"}',                '{"a":"c"}' ],
        [ '{"a":"b"}',          '{"b":"c"}',                '{"a":"b","b":"c"}' ],
        [ '{"a":"b"}',          '{"a":null}',               '{}' ],
        [ '{"a":"b","b":"c"}',  '{"a":null}',               '{"b":"c"}' ],
        [ '{"a":["b"]}',        '{"a":"c"}',                '{"a":"c"}' ],
        [ '{"a":"c"}',          '{"a":["b"]}',              '{"a":["b"]}' ],
        [ '{"a":{"b":"c"}}',    '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}' ],
        [ '{"a":[{"b":"c"}]}',  '{"a":[1]}',                '{"a":[1]}' ],
        [ '["a","b"]',          '["c","d"]',                '["c","d"]' ],
        [ '{"a":"b"}',          '["c"]',                    '["c"]' ],
        [ '{"a":"foo"}',        '"bar"',                    '"bar"' ],
        [ '{"e":null}',         '{"a":1}',                  '{"e":null,"a":1}' ],
        [ '[1,2]',              '{"a":"b","c":null}',       '{"a":"b"}' ],
        [ '{}',                 '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}' ],
    );
    merge_ok($A, 'rfc', @$_, "$_->[0] + $_->[1] = $_->[2]") for @rfc;

    # {"a":"foo"} + null = null in the RFC; a stored value is never null.
    my $r = put_text($A, 'rfc', '{"a":"foo"}');
    is $r->{status}, 200, 'PUT {"a":"foo"}';
    my $etag = $r->{headers}{etag};
    $s->error_is(patch($A, 'rfc', 'null'), 'INVALID_VALUE', '{"a":"foo"} + null: INVALID_VALUE (the result would be null)');
    $r = get($A, 'rfc');
    read_ok($r, 'rfc', { a => 'foo' }, 'nothing changed', text => '{"a":"foo"}');
    is $r->{headers}{etag}, $etag, 'nor the ETag';
};

subtest 'RFC 7396 section 3: the example' => sub {
    my $target = '{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],'
        . '"content":"This will be unchanged"}';
    my $patch = qq({\n  "title": "Hello!",\n  "phoneNumber": "+01-123-456-7890",\n  "author": {\n    "familyName": null\n  },\n  "tags": [ "example" ]\n}\n);
    my $result = '{"title":"Hello!","author":{"givenName":"John"},"tags":["example"],"content":"This will be unchanged",'
        . '"phoneNumber":"+01-123-456-7890"}';
    merge_ok($A, 'rfc', $target, $patch, $result, 'the blog entry: members keep their places, phoneNumber is appended');
};

subtest 'the rest of the algorithm' => sub {
    my @cases = (
        [ '1',                        '2',                         '2',                  'a number replaces a number' ],
        [ '"x"',                      'true',                      'true',               'true replaces a string' ],
        [ '[1]',                      'false',                     'false',              'false replaces an array' ],
        [ '{"a":1}',                  '0',                         '0',                  '0 replaces an object' ],
        [ '{"a":1}',                  '""',                        '""',                 'the empty string replaces an object' ],
        [ '{"a":1}',                  '[]',                        '[]',                 'an empty array replaces an object' ],
        [ '"s"',                      '{"a":1,"b":null}',          '{"a":1}',            'an object onto a string: onto {}, nulls dropped' ],
        [ '{"a":1}',                  '{"a":{"b":null,"c":2}}',    '{"a":{"c":2}}',      'an object onto a number member: onto {}' ],
        [ '{"a":{"b":1}}',            '{"a":{}}',                  '{"a":{"b":1}}',      'an empty object member changes nothing' ],
        [ '{"a":1}',                  '{}',                        '{"a":1}',            '{} changes nothing' ],
        [ '{"a":1}',                  '{"x":null}',                '{"a":1}',            'removing an absent member changes nothing' ],
        [ '{"a":1,"b":2}',            '{"a":null,"b":null}',       '{}',                 'removing every member leaves {}' ],
        [ '{"a":1,"b":2,"c":3}',      '{"b":null,"d":4,"a":9}',    '{"a":9,"c":3,"d":4}', 'a changes in place, b goes, d is appended' ],
        [ '{"o":{"x":1,"y":2},"p":0}', '{"o":{"z":3,"x":0}}',      '{"o":{"x":0,"y":2,"z":3},"p":0}', 'the same one level down' ],
        [ '{"a":[1,2,3]}',            '{"a":[3]}',                 '{"a":[3]}',          'arrays are replaced, never merged' ],
        [ '{"a":{"b":[{"c":1}]}}',    '{"a":{"b":[{"d":null}]}}',  '{"a":{"b":[{"d":null}]}}', 'an array in a patch is kept as it is, nulls in it too' ],
        [ '{"a":1}',                  '{"value":"x"}',             '{"a":1,"value":"x"}', 'the body is the patch itself, not {"value": ...}' ],
        [ '{"a":1}',                  '{"b":{"c":null,"d":{"e":null}}}', '{"a":1,"b":{"d":{}}}', 'nulls in new objects are dropped at every depth' ],
        [ '{"ключ":"значение"}',      '{"é":"☃ 𝄞","":1}',          '{"ключ":"значение","é":"☃ 𝄞","":1}', 'UTF-8 and empty member names' ],
        [ '{"a":"b"}',                qq( \t\n{ "a" :\n [ 1 , { "b" : 2 } ] }\r\n ), '{"a":[1,{"b":2}]}', 'whitespace in the patch is not stored' ],
        [ '{"a":1}',                  '{"q":"quote \" bs \\\\ nl \n tab \t é \u00e9"}',
                                      '{"a":1,"q":"quote \" bs \\\\ nl \n tab \t é é"}', 'escapes: stored as cJSON prints them' ],
    );
    merge_ok($A, 'rfc', @$_[0 .. 2], "$_->[3]: $_->[0] + " . show($_->[1], 60) . " = $_->[2]") for @cases;

    # Numbers: stored exactly as a PUT of the same numbers stores them
    # (doubles, printed by cJSON, as every other value).
    my $nums = '{"n":1.0,"big":12345678901234567890,"e":1e21,"f":0.1,"g":2.5E+3,"h":-0.0001,"i":5e-324,"j":9007199254740993}';
    stored_ok(req($A, POST => '/api/data', qq({"key":"numput","value":$nums})), 'numput', 'setup: POST the numbers');
    updated_ok(put_text($A, 'rfc', '{}'), 'setup: rfc is {}');
    updated_ok(patch($A, 'rfc', $nums), 'PATCH {} with the numbers');
    read_ok(get($A, 'rfc'), 'rfc', { n => 1, big => 1.2345678901234567e19, e => 1e21, f => 0.1, g => 2500,
        h => -0.0001, i => 5e-324, j => 9007199254740992 }, 'GET: the numbers as doubles');
    is stored_text($s, $A, 'rfc'), stored_text($s, $A, 'numput'), 'the stored text is what POST stored for them: '
        . show(stored_text($s, $A, 'numput'), 200);

    # A string holding every escape, through PATCH and through POST.
    my $esc = '{"s":"\"\\\\\/\b\f\n\r\t\u0001\u001f\u007f\u00e9\u2028\ud834\udd1e"}';
    stored_ok(req($A, POST => '/api/data', qq({"key":"escput","value":$esc})), 'escput', 'setup: POST the escapes');
    updated_ok(put_text($A, 'rfc', '{}'), 'setup: rfc is {}');
    updated_ok(patch($A, 'rfc', $esc), 'PATCH {} with the escapes');
    read_ok(get($A, 'rfc'), 'rfc', { s => "\"\\/\b\f\n\r\t\x{1}\x{1f}\x{7f}é\x{2028}\x{1d11e}" }, 'GET: the string');
    is stored_text($s, $A, 'rfc'), stored_text($s, $A, 'escput'), 'the stored text is what POST stored';
};

subtest '200 levels deep (MariaDB\'s JSON_MERGE_PATCH stops at 32)' => sub {
    my $n = 200;
    my $target = '{"d":' x ($n - 1) . '{"leaf":1,"keep":true}' . '}' x ($n - 1);
    my $patch = '{"d":' x ($n - 1) . '{"leaf":null,"new":[1,{"x":null}]}' . '}' x ($n - 1);
    my $result = '{"d":' x ($n - 1) . '{"keep":true,"new":[1,{"x":null}]}' . '}' x ($n - 1);
    stored_ok(req($A, POST => '/api/data', qq({"key":"deep","value":$target})), 'deep', "POST a value $n levels deep");
    my $etag = updated_ok(patch($A, 'deep', $patch), "PATCH $n levels deep");
    my $r = get($A, 'deep');
    is $r->{status}, 200, 'GET: 200';
    is $r->{headers}{etag}, $etag, 'GET: the new ETag';
    # (compared as text: is_deeply would recurse 200 levels)
    is $r->{body}, qq({"status":"success","data":{"key":"deep","value":$result}}), "GET: the whole body, merged at level $n";
    is stored_text($s, $A, 'deep'), $result, 'the stored text';
    updated_ok(patch($A, 'deep', '{"d":null,"top":1}'), 'PATCH the top: removes the whole tree');
    read_ok(get($A, 'deep'), 'deep', { top => 1 }, 'GET: {"top":1}', text => '{"top":1}');
};

subtest 'Content-Type' => sub {
    stored_ok(req($A, POST => '/api/data', { key => 'ct', value => {} }), 'ct', 'setup: ct is {}');
    my $i = 0;
    for my $ct ($MP, 'application/json', "$MP; charset=utf-8", 'application/json; charset=UTF-8', 'Application/Merge-Patch+JSON') {
        $i++;
        updated_ok(patch($A, 'ct', qq({"m$i":$i}), ct => $ct), "PATCH as $ct");
    }
    read_ok(get($A, 'ct'), 'ct', { map { ("m$_" => 0 + $_) } 1 .. $i }, 'GET: all five applied', text => '{"m1":1,"m2":2,"m3":3,"m4":4,"m5":5}');
    my $etag = get($A, 'ct')->{headers}{etag};
    for my $ct (undef, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
                'application/json-patch+json', "$MP; charset=latin1", 'application/jsonp', 'application/merge-patch') {
        $s->error_is(patch($A, 'ct', '{"bad":1}', ct => $ct), 'UNSUPPORTED_MEDIA_TYPE', 'PATCH as ' . ($ct // 'no Content-Type'));
    }
    $s->error_is(patch($A, 'ct', '[{"op":"remove","path":"/m1"}]', ct => 'application/json-patch+json'),
        'UNSUPPORTED_MEDIA_TYPE', 'a JSON Patch (RFC 6902) as such: 415, never applied as a merge patch');
    $s->error_is(patch($A, 'ct', '{', ct => 'text/plain'), 'UNSUPPORTED_MEDIA_TYPE', '415 before INVALID_JSON');
    my $r = get($A, 'ct');
    is $r->{headers}{etag}, $etag, 'no refused PATCH changed anything';
};

subtest 'INVALID_JSON, INVALID_VALUE' => sub {
    stored_ok(req($A, POST => '/api/data', { key => 'pv', value => { keep => 1 } }), 'pv', 'setup: pv');
    my $etag = get($A, 'pv')->{headers}{etag};
    my $deep = '{"a":' x 256 . '1' . '}' x 256;    # 257 levels
    my @json = (
        [ 'empty body',               '' ],
        [ 'only whitespace',          " \n" ],
        [ 'truncated object',         '{"a":1' ],
        [ 'truncated string',         '"abc' ],
        [ 'garbage after',            '{"a":1}x' ],
        [ 'two values',               '{"a":1} {"b":2}' ],
        [ 'trailing comma',           '{"a":1,}' ],
        [ 'single quotes',            "{'a':1}" ],
        [ 'bare word',                'nul' ],
        [ 'NaN',                      'NaN' ],
        [ 'raw NUL byte',             qq({"a":"x\x00y"}) ],
        [ 'byte 0xFF',                qq({"a":"\xFF"}) ],
        [ 'overlong UTF-8',           qq({"a":"\xC0\xAF"}) ],
        [ 'UTF-8 surrogate',          qq({"a":"\xED\xA0\x80"}) ],
        [ 'duplicate member',         '{"a":1,"a":2}' ],
        [ 'duplicate nested',         '{"x":{"b":1,"b":null}}' ],
        [ 'duplicate in an array',    '[{"x":1,"x":1}]' ],
        [ 'duplicate by escapes',     '{"a":1,"\u0061":2}' ],
        [ 'duplicate deep',           '{"p":[[{"q":{"r":1,"s":2,"r":3}}]]}' ],
        [ '257 levels',               $deep ],
        [ '10000 nested arrays',      '[' x 10000 . ']' x 10000 ],
    );
    $s->error_is(patch($A, 'pv', $_->[1]), 'INVALID_JSON', "PATCH: $_->[0]") for @json;
    my @value = (
        [ 'top-level null',           'null' ],
        [ 'null in whitespace',       " \n null \t" ],
        [ '\u0000 in a string',       '"ab\u0000cd"' ],
        [ '\u0000 at a string\'s end', '{"a":"x\u0000"}' ],
        [ '\u0000 in a member name',  '{"a\u0000":1}' ],
        [ '\u0000 deep in an array',  '[[["\u0000"]]]' ],
        [ '1e400',                    '1e400' ],
        [ '-1e400 in a member',       '{"a":-1e400}' ],
    );
    $s->error_is(patch($A, 'pv', $_->[1]), 'INVALID_VALUE', "PATCH: $_->[0]") for @value;
    my $r = get($A, 'pv');
    read_ok($r, 'pv', { keep => 1 }, 'no refused PATCH changed the value');
    is $r->{headers}{etag}, $etag, 'nor the ETag';

    # The order: auth, Content-Type, body, then the key in the database.
    $s->error_is(patch($A, 'pv', '{', token => undef), 'INVALID_TOKEN', 'no token and invalid JSON: INVALID_TOKEN');
    is patch($A, 'pv', '{}', token => undef)->{headers}{'www-authenticate'}, 'Bearer realm="kvapi"',
        'no token: WWW-Authenticate';
    $r = patch($A, 'pv', 'null', token => 'A' x 43, ct => 'text/plain');
    $s->error_is($r, 'INVALID_TOKEN', 'an unknown token, text/plain and null: INVALID_TOKEN');
    is $r->{headers}{'www-authenticate'}, 'Bearer realm="kvapi", error="invalid_token"', 'a refused token: WWW-Authenticate';
    $s->error_is(patch($A, 'never', '{'), 'INVALID_JSON', 'a missing key and invalid JSON: INVALID_JSON');
    $s->error_is(patch($A, 'never', 'null'), 'INVALID_VALUE', 'a missing key and null: INVALID_VALUE');
    $s->error_is(patch($A, 'never', '{"a":1}'), 'KEY_NOT_FOUND', 'a missing key: KEY_NOT_FOUND');
    $s->error_is(get($A, 'never'), 'KEY_NOT_FOUND', 'PATCH did not create it');
};

subtest 'If-Match' => sub {
    my $etag = stored_ok(req($A, POST => '/api/data', { key => 'im', value => { n => 0 } }), 'im', 'setup: im');
    my $e1 = updated_ok(patch($A, 'im', '{"n":1}', headers => { 'If-Match' => $etag }), 'If-Match: the current ETag');
    isnt $e1, $etag, 'a new ETag';
    $s->error_is(patch($A, 'im', '{"n":2}', headers => { 'If-Match' => $etag }), 'PRECONDITION_FAILED', 'If-Match: the old ETag');
    $s->error_is(patch($A, 'im', '{"n":2}', headers => { 'If-Match' => '"0000000000000000"' }), 'PRECONDITION_FAILED',
        'If-Match: an ETag never issued');
    for my $bad ("' OR '1'='1", '"unterminated', 'W/', "$e1 junk") {
        $s->error_is(patch($A, 'im', '{"n":2}', headers => { 'If-Match' => $bad }), 'PRECONDITION_FAILED',
            "If-Match: malformed ($bad): 412, as PUT and DELETE answer it");
        $s->error_is(req($A, PUT => '/api/data/im', { value => { n => 2 } }, headers => { 'If-Match' => $bad }),
            'PRECONDITION_FAILED', "(PUT with If-Match $bad: 412)");
    }
    read_ok(get($A, 'im'), 'im', { n => 1 }, 'the refused PATCHes changed nothing', text => '{"n":1}');
    my $e2 = updated_ok(patch($A, 'im', '{"n":3}', headers => { 'If-Match' => "\"0000000000000000\", $e1" }),
        'If-Match: a list holding the current ETag');
    my $e3 = updated_ok(patch($A, 'im', '{"n":4}', headers => { 'If-Match' => '*' }), 'If-Match: *');
    isnt $e3, $e2, 'a new ETag each time';
    my $r = get($A, 'im');
    read_ok($r, 'im', { n => 4 }, 'GET', text => '{"n":4}');
    is $r->{headers}{etag}, $e3, 'GET gives the last ETag';
    $s->error_is(patch($A, 'im_none', '{"n":1}', headers => { 'If-Match' => $e3 }), 'KEY_NOT_FOUND',
        'a missing key with If-Match: 404, not 412');
    $s->error_is(patch($A, 'im_none', '{"n":1}', headers => { 'If-Match' => '*' }), 'KEY_NOT_FOUND',
        'a missing key with If-Match *: 404');
};

subtest 'users and keys' => sub {
    stored_ok(req($A, POST => '/api/data', { key => 'mine', value => { a => 1 } }), 'mine', 'setup: A stores mine');
    $s->error_is(patch($B, 'mine', '{"a":"stolen"}'), 'KEY_NOT_FOUND', "B cannot PATCH A's key");
    stored_ok(req($B, POST => '/api/data', { key => 'mine', value => { b => 1 } }), 'mine', 'B stores its own mine');
    updated_ok(patch($B, 'mine', '{"c":2}'), 'B patches its own');
    read_ok(get($A, 'mine'), 'mine', { a => 1 }, "A's is untouched", text => '{"a":1}');
    read_ok(get($B, 'mine'), 'mine', { b => 1, c => 2 }, "B's is patched", text => '{"b":1,"c":2}');

    my $key = "a/b c%☃?#";
    stored_ok(req($A, POST => '/api/data', { key => $key, value => [] }), $key, 'POST a key needing escapes');
    updated_ok(patch($A, $key, '{"z":1}'), 'PATCH ' . kpath($key));
    read_ok(get($A, $key), $key, { z => 1 }, 'GET it', text => '{"z":1}');
    $s->error_is(req($A, PATCH => '/api/data/a%zz', '{}', ct => $MP), 'INVALID_KEY', 'PATCH /api/data/a%zz');
    $s->error_is(req($A, PATCH => '/api/data/a%01', '{}', ct => $MP), 'INVALID_KEY', 'PATCH /api/data/a%01');
    $s->error_is(req($A, PATCH => '/api/data/' . 'k' x 256, '{}', ct => $MP), 'INVALID_KEY', 'PATCH a 256-byte key');
    $s->error_is(req($A, PATCH => '/api/data/mine/', '{}', ct => $MP), 'KEY_NOT_FOUND', 'PATCH /api/data/mine/ is key "mine/"');
};

subtest 'the route: 405 with Allow, the preflight' => sub {
    for my $m (qw(POST PROPFIND)) {
        my $r = req($A, $m => '/api/data/mine', '{"key":"x","value":1}');
        $s->error_is($r, 'METHOD_NOT_ALLOWED', "$m /api/data/mine");
        is $r->{headers}{allow}, $ALLOW_KEY, "$m /api/data/mine: Allow lists PATCH";
    }
    my $r = req($A, PATCH => '/api/data', '{}', ct => $MP);
    $s->error_is($r, 'METHOD_NOT_ALLOWED', 'PATCH /api/data (the collection)');
    is $r->{headers}{allow}, 'POST, GET, HEAD, OPTIONS', 'PATCH /api/data: its Allow';
    $r = $s->request(OPTIONS => '/api/data/mine', { headers => { Origin => 'http://example.com',
        'Access-Control-Request-Method' => 'PATCH', 'Access-Control-Request-Headers' => 'authorization,content-type' } });
    is $r->{status}, 204, 'preflight of PATCH: 204';
    is $r->{headers}{'access-control-allow-methods'}, 'GET,HEAD,PUT,PATCH,POST,DELETE', 'Access-Control-Allow-Methods';
};

subtest 'value_max: the result counts, not the patch' => sub {
    my $s2 = KVTest->start(value_max => 1000);
    my $u = $s2->new_user('patch_vm');
    my $p2 = sub { my ($key, $text) = @_; dreq($s2, $u, PATCH => kpath($key), $text, ct => $MP) };
    my $g2 = sub { dreq($s2, $u, GET => kpath($_[0])) };
    stored_ok(post_kv($s2, $u, 'vm', 'x' x 988), 'vm', 'setup: a value of 990 bytes');
    updated_ok($p2->('vm', '"' . 'y' x 998 . '"'), 'PATCH to exactly 1000 bytes: 200');
    my $etag = $g2->('vm')->{headers}{etag};
    $s2->error_is($p2->('vm', '"' . 'z' x 999 . '"'), 'INVALID_VALUE', 'PATCH to 1001 bytes: INVALID_VALUE');

    my $big = '{"a":"' . 'x' x 984 . '"}';    # 992 bytes
    updated_ok(dreq($s2, $u, PUT => '/api/data/vm', qq({"value":$big})), 'PUT an object of 992 bytes');
    $etag = $g2->('vm')->{headers}{etag};
    $s2->error_is($p2->('vm', '{"bcde":1}'), 'INVALID_VALUE', 'a member that makes it 1001 bytes: INVALID_VALUE');
    $s2->error_is($p2->('vm', '{"b":"' . 'w' x 1000 . '"}'), 'INVALID_VALUE', 'a member of 1000 bytes: INVALID_VALUE');
    my $r = $g2->('vm');
    is $r->{headers}{etag}, $etag, 'the refused PATCHes changed nothing (ETag)';
    is $r->{body}, qq({"status":"success","data":{"key":"vm","value":$big}}), 'nor the value';
    updated_ok($p2->('vm', '{"bcd":1}'), 'a member that makes it exactly 1000 bytes: 200');
    is stored_text($s2, $u, 'vm'), substr($big, 0, -1) . ',"bcd":1}', 'stored: 1000 bytes';
    is length(stored_text($s2, $u, 'vm') // ''), 1000, '(1000)';

    # A patch over value_max whose result is small.
    my $nulls = '{"a":null,' . join(',', map { qq("absent$_":null) } 1 .. 150) . '}';
    ok length($nulls) > 1000, 'a patch of ' . length($nulls) . ' bytes';
    updated_ok($p2->('vm', $nulls), 'a patch over value_max with a small result: 200');
    read_ok($g2->('vm'), 'vm', { bcd => 1 }, 'GET: {"bcd":1}', text => '{"bcd":1}');
    $s2->stop;
};

$s->stop;
done_testing;
