# Per-user quotas (API.md "Data lifecycle", issue 15 and its decisions)
# on a stack with quota_keys 5 and quota_bytes 100 that never purges:
# GET /api/users/me shows usage {keys, bytes} (bytes: the key's bytes plus
# the value's stored compact text) and quota {keys, bytes}, exactly, after
# known sequences of POST, PUT, PATCH and DELETE; a POST, PUT or PATCH
# that would pass either limit is 507 QUOTA_EXCEEDED and changes nothing,
# reaching the limit exactly is fine, writes that keep or shrink a size
# pass at the limit, another user is not affected; KEY_EXISTS,
# KEY_NOT_FOUND and PRECONDITION_FAILED come before QUOTA_EXCEEDED, the
# field checks (INVALID_VALUE, INVALID_TTL) before all; a DELETE frees at
# once, and so does an expiry, before any purge (the row is still in the
# table when the new key goes in); last, KVAPI_QUOTA_KEYS and
# KVAPI_QUOTA_BYTES override the config file.
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

my %Q = (quota_keys => 5, quota_bytes => 100);
my $s = KVTest->start(%Q, token_purge_interval => 0);
my $MP = 'application/merge-patch+json';

sub req { dreq($s, @_) }
sub get { req($_[0], GET => kpath($_[1])) }
sub post { my ($u, $k, $v, %x) = @_; post_kv($s, $u, $k, $v, %x) }
# PUT $v as $k; ttl => in the body, the rest dreq's options.
sub put {
    my ($u, $k, $v, %o) = @_;
    my $ttl = delete $o{ttl};
    return req($u, PUT => kpath($k), { value => $v, defined $ttl ? (ttl => $ttl) : () }, %o);
}
sub patch { my ($u, $k, $text, %o) = @_; req($u, PATCH => kpath($k), $text, ct => $MP, %o) }
sub usage { my ($u, $k, $b, $name) = @_; usage_ok($s, $u, $k, $b, $name, %Q) }
# The table's own sum for $u, beside the usage the API reports.
sub table_bytes { $s->sql("SELECT COALESCE(SUM(LENGTH(k) + LENGTH(v)), 0) FROM data WHERE user_id = $_[0]{user_id}")->[0][0] }
sub quota_is { my ($r, $name) = @_; $s->error_is($r, 'QUOTA_EXCEEDED', $name) }

# One test: $u's $key still reads $value with ETag $etag.
sub unchanged {
    my ($u, $key, $value, $etag, $name) = @_;
    my $r = get($u, $key);
    subtest $name => sub {
        read_ok($r, $key, $value, 'the value');
        is $r->{headers}{etag}, $etag, 'the ETag';
    };
}

subtest 'usage in GET /api/users/me: keys and bytes of key + stored value' => sub {
    my $u = $s->new_user('q_use');
    usage($u, 0, 0, 'a new user: 0 keys, 0 bytes; the quota of the config');
    stored_ok(post($u, 'k1', 'v'), 'k1', 'POST k1 "v": 2 + 3 bytes');
    usage($u, 1, 5, 'usage 1, 5');
    stored_ok(post($u, 'é', { a => [ 1, 2 ] }), 'é', 'POST é {"a":[1,2]}: 2 + 11 bytes');
    stored_ok(req($u, POST => '/api/data', '{"key":"ws","value":[1,   2]}'), 'ws', 'POST ws [1,   2]: stored [1,2], 2 + 5');
    stored_ok(req($u, POST => '/api/data', '{"key":"esc","value":"a\nb"}'), 'esc', 'POST esc "a\nb": stored with the escape, 3 + 6');
    stored_ok(req($u, POST => '/api/data', '{"key":"u","value":"\u2603"}'), 'u', 'POST u "\u2603": stored as UTF-8, 1 + 5');
    usage($u, 5, 40, 'usage 5 keys, 5 + 13 + 7 + 9 + 6 = 40 bytes');
    is table_bytes($u), 40, 'the table holds 40 bytes of key and value text';
    $s->error_is(post($u, 'k1', 'again'), 'KEY_EXISTS', 'POST k1 again: KEY_EXISTS');
    updated_ok(put($u, 'k1', 'vvv'), 'PUT k1 "vvv": + 2');
    updated_ok(patch($u, 'é', '{"b":true}'), 'PATCH é {"b":true}: {"a":[1,2],"b":true}, + 9');
    usage($u, 5, 51, 'usage 5, 51');
    deleted_ok(req($u, DELETE => '/api/data/esc'), 'DELETE esc');
    usage($u, 4, 42, 'a DELETE frees at once: 4, 42');
    updated_ok(put($u, 'k1', 1), 'PUT k1 1: - 4');
    updated_ok(patch($u, 'é', '{"a":null}'), 'PATCH é {"a":null}: {"b":true}, - 10');
    usage($u, 4, 28, 'shrinking frees at once: 4, 28');
    is table_bytes($u), 28, 'the table agrees';
};

subtest 'quota_keys: at most 5 keys' => sub {
    my $u = $s->new_user('q_keys');
    stored_ok(post($u, "q$_", $_), "q$_", "POST q$_") for 1 .. 5;
    usage($u, 5, 15, 'usage 5 keys, 15 bytes');
    quota_is(post($u, 'q6', 6), 'POST q6: QUOTA_EXCEEDED');
    quota_is(post($u, 'q6', 6, ttl => 60), 'POST q6 with a ttl: QUOTA_EXCEEDED');
    $s->error_is(get($u, 'q6'), 'KEY_NOT_FOUND', 'q6 was not stored');
    is rows_of($s, $u), 5, 'five rows';
    usage($u, 5, 15, 'usage unchanged');
    updated_ok(put($u, 'q1', 7), 'at the limit: PUT q1 (same size)');
    updated_ok(put($u, 'q2', 8, ttl => 60), 'at the limit: PUT q2 with a ttl');
    updated_ok(patch($u, 'q3', '{"a":1}'), 'at the limit: PATCH q3 (no new key; bytes within the quota)');
    usage($u, 5, 21, 'usage 5, 21');
    my $o = $s->new_user('q_other');
    stored_ok(post($o, 'q6', 6), 'q6', 'another user has a quota of its own');
    deleted_ok(req($u, DELETE => '/api/data/q5'), 'DELETE q5');
    stored_ok(post($u, 'q6', 6), 'q6', 'POST q6 now: 201 (the DELETE freed a key at once)');
    quota_is(post($u, 'q7', 7), 'POST q7: QUOTA_EXCEEDED');
    usage($u, 5, 21, 'usage 5, 21');
};

subtest 'quota_bytes: at most 100 bytes' => sub {
    my $u = $s->new_user('q_bytes');
    stored_ok(post($u, 'b1', 'x' x 50), 'b1', 'POST b1: 2 + 52 bytes');
    stored_ok(post($u, 'b2', 'y' x 42), 'b2', 'POST b2: 2 + 44 bytes, exactly 100: fine');
    usage($u, 2, 100, 'usage 2, 100');
    quota_is(post($u, 'b3', 1), 'POST b3 (3 bytes more): QUOTA_EXCEEDED');
    quota_is(post($u, 'c', ''), 'POST c "" (3 bytes more): QUOTA_EXCEEDED');
    is rows_of($s, $u), 2, 'two rows';
    my $e1 = get($u, 'b1')->{headers}{etag};
    quota_is(put($u, 'b1', 'x' x 51), 'PUT b1 one byte longer: QUOTA_EXCEEDED');
    quota_is(put($u, 'b1', 'x' x 51, headers => { 'If-Match' => $e1 }), 'the same with the right If-Match');
    quota_is(put($u, 'b1', 'x' x 51, ttl => 100), 'the same with a ttl');
    unchanged($u, 'b1', 'x' x 50, $e1, 'b1 unchanged');
    updated_ok(put($u, 'b1', 'z' x 50), 'PUT b1 of the same size: fine at the limit');
    updated_ok(put($u, 'b1', 'z' x 40), 'PUT b1 10 bytes shorter: fine');
    usage($u, 2, 90, 'usage 2, 90');
    updated_ok(put($u, 'b2', 'y' x 52), 'PUT b2 10 bytes longer: exactly 100 again');
    my $e2 = get($u, 'b2')->{headers}{etag};
    quota_is(patch($u, 'b2', '"' . 'w' x 53 . '"'), 'PATCH b2 one byte longer: QUOTA_EXCEEDED');
    quota_is(patch($u, 'b2', '["' . 'w' x 51 . '"]'), 'PATCH b2 into an array one byte longer: QUOTA_EXCEEDED');
    unchanged($u, 'b2', 'y' x 52, $e2, 'b2 unchanged');
    updated_ok(patch($u, 'b2', '"' . 'v' x 52 . '"'), 'PATCH b2 of the same size: fine');
    updated_ok(patch($u, 'b1', '"short"'), 'PATCH b1 "short": 2 + 7');
    usage($u, 2, 65, 'usage 2, 9 + 56 = 65');
    deleted_ok(req($u, DELETE => '/api/data/b2'), 'DELETE b2');
    usage($u, 1, 9, 'usage 1, 9');
    stored_ok(post($u, 'b3', 'x' x 87), 'b3', 'POST b3: 2 + 89, exactly 100');
    usage($u, 2, 100, 'usage 2, 100');
    is table_bytes($u), 100, 'the table agrees';
};

subtest 'KEY_EXISTS, KEY_NOT_FOUND, PRECONDITION_FAILED before QUOTA_EXCEEDED' => sub {
    my $u = $s->new_user('q_order');
    stored_ok(post($u, 'o1', 'x' x 80), 'o1', 'POST o1: 84 bytes');
    stored_ok(post($u, "o$_", $_), "o$_", "POST o$_: 3 bytes") for 2 .. 5;
    usage($u, 5, 96, 'both limits all but reached: 5 keys, 96 bytes');
    my $e2 = get($u, 'o2')->{headers}{etag};
    my $big = 'y' x 90;
    $s->error_is(post($u, 'o1', $big), 'KEY_EXISTS', 'POST an existing key, over both: KEY_EXISTS');
    quota_is(post($u, 'o6', 1), 'POST a new key: QUOTA_EXCEEDED');
    $s->error_is(put($u, 'o9', $big), 'KEY_NOT_FOUND', 'PUT a missing key, over both: KEY_NOT_FOUND');
    $s->error_is(patch($u, 'o9', qq("$big")), 'KEY_NOT_FOUND', 'PATCH a missing key, over both: KEY_NOT_FOUND');
    $s->error_is(put($u, 'o9', $big, headers => { 'If-Match' => $e2 }), 'KEY_NOT_FOUND',
        'PUT a missing key with If-Match, over both: KEY_NOT_FOUND');
    $s->error_is(put($u, 'o2', $big, headers => { 'If-Match' => '"0000000000000000"' }), 'PRECONDITION_FAILED',
        'PUT over the bytes, wrong If-Match: PRECONDITION_FAILED');
    $s->error_is(patch($u, 'o2', qq("$big"), headers => { 'If-Match' => '"0000000000000000"' }), 'PRECONDITION_FAILED',
        'PATCH over the bytes, wrong If-Match: PRECONDITION_FAILED');
    quota_is(put($u, 'o2', $big, headers => { 'If-Match' => $e2 }), 'PUT over the bytes, right If-Match: QUOTA_EXCEEDED');
    quota_is(patch($u, 'o2', qq("$big"), headers => { 'If-Match' => $e2 }), 'PATCH over the bytes, right If-Match: QUOTA_EXCEEDED');
    $s->error_is(post($u, 'o6', undef), 'INVALID_VALUE', 'POST a new key, value null: INVALID_VALUE');
    $s->error_is(post($u, 'o6', 1, ttl => 0), 'INVALID_TTL', 'POST a new key, ttl 0: INVALID_TTL');
    $s->error_is(put($u, 'o2', $big, ttl => -1), 'INVALID_TTL', 'PUT over the bytes, ttl -1: INVALID_TTL');
    $s->error_is(patch($u, 'o2', 'null'), 'INVALID_VALUE', 'PATCH null: INVALID_VALUE');
    unchanged($u, 'o2', 2, $e2, 'o2 unchanged');
    usage($u, 5, 96, 'usage unchanged');
    is rows_of($s, $u), 5, 'five rows';
};

subtest 'an expiry frees its key and bytes at once, before any purge' => sub {
    # ttl 2: the refusals before the expiry must come within the key's
    # life, even on a busy machine.
    my $u = $s->new_user('q_exp');
    stored_ok(post($u, "e$_", $_), "e$_", "POST e$_") for 1 .. 4;
    stored_ok(post($u, 'et', 'tt', ttl => 2), 'et', 'POST et, ttl 2: the fifth key');
    quota_is(post($u, 'e5', 5), 'POST e5 while et lives: QUOTA_EXCEEDED');
    usage($u, 5, 18, 'usage 5, 12 + 6');
    my ($gone) = wait_expired($s, $u, 'et', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'et expires');
    is rows_of($s, $u, 'et'), 1, 'its row is still in the table (this stack never purges)';
    usage($u, 4, 12, 'the expired key no longer counts: usage 4, 12');
    stored_ok(post($u, 'e5', 5), 'e5', 'POST e5 right after the expiry: 201');
    quota_is(post($u, 'et', 'again'), 'POST of the expired key: a new key, over the quota now');
    deleted_ok(req($u, DELETE => '/api/data/e5'), 'DELETE e5');
    stored_ok(post($u, 'et', 'again'), 'et', 'POST of the expired key: 201, created anew');
    read_ok(get($u, 'et'), 'et', 'again', 'GET et: the new value, no expiry');
    usage($u, 5, 21, 'usage 5, 12 + 9');

    my $v = $s->new_user('q_expb');
    stored_ok(post($v, 'f1', 'x' x 80), 'f1', 'POST f1: 84 bytes');
    stored_ok(post($v, 'ft', 'y' x 10, ttl => 2), 'ft', 'POST ft, ttl 2: 14 bytes');
    quota_is(post($v, 'f2', 'zzz'), 'POST f2 (7 bytes) while ft lives: QUOTA_EXCEEDED');
    ($gone) = wait_expired($s, $v, 'ft', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'ft expires');
    usage($v, 1, 84, 'its bytes no longer count: usage 1, 84');
    stored_ok(post($v, 'f2', 'zzz'), 'f2', 'POST f2 right after: 201');
    usage($v, 2, 91, 'usage 2, 91');

    # A POST onto an expired key replaces it: only the new value counts.
    my $w = $s->new_user('q_expc');
    stored_ok(post($w, 'big', 'x' x 80, ttl => 2), 'big', 'POST big, ttl 2: 3 + 82 bytes');
    usage($w, 1, 85, 'usage 1, 85');
    ($gone) = wait_expired($s, $w, 'big', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'big expires');
    stored_ok(post($w, 'big', 'y'), 'big', 'POST big anew: 3 + 3 bytes');
    usage($w, 1, 6, 'usage 1, 6: the expired value no longer counts');
    stored_ok(post($w, 'b2', 'z' x 80), 'b2', 'POST b2: 2 + 82 bytes, 90 in all');
    usage($w, 2, 90, 'usage 2, 90');
    is table_bytes($w), 90, 'the table agrees';
};

subtest 'KVAPI_QUOTA_KEYS and KVAPI_QUOTA_BYTES override the config file' => sub {
    local $ENV{KVAPI_QUOTA_KEYS} = 2;
    local $ENV{KVAPI_QUOTA_BYTES} = 1000;
    $s->restart_app;
    my $u = $s->new_user('q_env');
    usage_ok($s, $u, 0, 0, 'quota 2 keys, 1000 bytes', quota_keys => 2, quota_bytes => 1000);
    stored_ok(post($u, 'n1', 'x' x 200), 'n1', 'POST n1 (204 bytes: over the file\'s 100)');
    stored_ok(post($u, 'n2', 1), 'n2', 'POST n2');
    quota_is(post($u, 'n3', 1), 'POST n3: QUOTA_EXCEEDED (2 keys)');
    usage_ok($s, $u, 2, 207, 'usage 2, 207', quota_keys => 2, quota_bytes => 1000);

    # A user over the new quota (5 keys from before): writes that keep or
    # shrink pass, growth does not, a DELETE is always fine.
    my $o = $s->new_user('q_over');
    stored_ok(post($o, "v$_", 'x' x 100), "v$_", "setup: POST v$_") for 1 .. 2;
    local $ENV{KVAPI_QUOTA_KEYS} = 1;
    local $ENV{KVAPI_QUOTA_BYTES} = 100;
    $s->restart_app;
    my %q1 = (quota_keys => 1, quota_bytes => 100);
    usage_ok($s, $o, 2, 208, 'over the lowered quota: 2 keys, 208 bytes of 1 and 100', %q1);
    updated_ok(put($o, 'v1', 'y' x 100), 'PUT of the same size: fine');
    updated_ok(patch($o, 'v1', '"short"'), 'PATCH that shrinks: fine');
    quota_is(put($o, 'v2', 'z' x 101), 'PUT that grows: QUOTA_EXCEEDED');
    quota_is(post($o, 'v3', 1), 'POST: QUOTA_EXCEEDED');
    deleted_ok(req($o, DELETE => '/api/data/v2'), 'DELETE: fine');
    usage_ok($s, $o, 1, 9, 'usage 1 key, 9 bytes', %q1);
    quota_is(post($o, 'v3', 1), 'POST a second key: QUOTA_EXCEEDED');
};

$s->stop;
done_testing;
