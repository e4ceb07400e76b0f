# TTL on keys (API.md "Data lifecycle", issue 15 and its decisions): the
# optional ttl of POST /api/data and PUT /api/data/{key} (integer seconds
# 1..31536000; an integral number such as 10.0 or 1e1 counts, null is
# absent; 0, -1, 1.5, "10", 31536001, true, [], {} and the like are 400
# INVALID_TTL, checked after the key and the value, before KEY_EXISTS and
# KEY_NOT_FOUND); expires_at in GET and in the listing (UTC, to the
# second, after value) and no such member without a TTL; PUT replaces the
# expiry (no ttl: none), a refused write and PATCH keep it.  A key with
# ttl 1 is there right after the write, gone within a deadline but never
# before its second, and then KEY_NOT_FOUND at once on GET, HEAD, PUT,
# PATCH and DELETE (with If-Match or If-None-Match too), absent from the
# listing (also from a page of limit=1), while its row is still in the
# table (this stack never purges), and a POST creates it anew (201, a new
# ETag, no expiry unless the new ttl says so).  Last, with
# token_purge_interval 1 the workers purge expired rows in the background.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);
use lib 't/lib';
use KVTest qw(json_is kpath show);
use KVLife qw(:all);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

# No background purge: whatever expires here, the statements themselves
# must hide.
my $s = KVTest->start(token_purge_interval => 0);
my $A = $s->new_user('ttl_a');
my $B = $s->new_user('ttl_b');

sub req { dreq($s, @_) }

# A request of the clock's window: (answer, time before, time after).
sub timed {
    my $t0 = time;
    my $r = req(@_);
    return ($r, $t0, time);
}

sub get { req($_[0], GET => kpath($_[1])) }
sub list_of { req($_[0], GET => "/api/data?$_[1]") }

subtest 'POST with a ttl: expires_at in GET' => sub {
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 't100', value => 'v', ttl => 100 });
    stored_ok($r, 't100', 'POST ttl 100: 201');
    read_ok(get($A, 't100'), 't100', 'v', 'GET: expires_at is the write\'s time + 100 s', ttl => 100, t0 => $t0, t1 => $t1);

    ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'tmax', value => [ 1, { a => JSON::PP::true } ], ttl => $TTL_MAX });
    stored_ok($r, 'tmax', "POST ttl $TTL_MAX (the maximum): 201");
    read_ok(get($A, 'tmax'), 'tmax', [ 1, { a => JSON::PP::true } ], "GET: + $TTL_MAX s (a year)",
        ttl => $TTL_MAX, t0 => $t0, t1 => $t1);

    for ([ '10.0', 10, 'tnum_a' ], [ '1e1', 10, 'tnum_b' ], [ '2.5E1', 25, 'tnum_c' ], [ '600.000', 600, 'tnum_d' ]) {
        my ($text, $ttl, $k) = @$_;
        ($r, $t0, $t1) = timed($A, POST => '/api/data', qq({"key":"$k","value":"n","ttl":$text}));
        stored_ok($r, $k, "POST ttl $text: an integral number counts (as age does)");
        read_ok(get($A, $k), $k, 'n', "GET: + $ttl s", ttl => $ttl, t0 => $t0, t1 => $t1);
    }

    stored_ok(req($A, POST => '/api/data', '{"key":"tnull","value":{"b":1,"a":[1,"x"]},"ttl":null}'), 'tnull',
        'POST ttl null: counts as absent');
    read_ok(get($A, 'tnull'), 'tnull', { b => 1, a => [ 1, 'x' ] }, 'GET: no expires_at member',
        text => '{"b":1,"a":[1,"x"]}');
    stored_ok(req($A, POST => '/api/data', '{"key":"tnone","value":"forever"}'), 'tnone', 'POST without ttl');
    read_ok(get($A, 'tnone'), 'tnone', 'forever', 'GET: no expires_at member', text => '"forever"');

    ($r, $t0, $t1) = timed($A, POST => '/api/data', '{"key":"tord","value":{"z":1,"a":{"y":[2]}},"ttl":60}');
    stored_ok($r, 'tord', 'POST an object with a ttl');
    read_ok(get($A, 'tord'), 'tord', { z => 1, a => { y => [2] } }, 'GET: the value keeps its text, then expires_at',
        ttl => 60, t0 => $t0, t1 => $t1, text => '{"z":1,"a":{"y":[2]}}');
    $s->error_is(get($B, 't100'), 'KEY_NOT_FOUND', 'another user does not see it');
};

subtest 'the listing shows expires_at where a key has a TTL' => sub {
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'lst_1', value => 1, ttl => 100 });
    stored_ok($r, 'lst_1', 'POST lst_1, ttl 100');
    my $e1 = read_ok(get($A, 'lst_1'), 'lst_1', 1, 'GET lst_1', ttl => 100, t0 => $t0, t1 => $t1);
    stored_ok(req($A, POST => '/api/data', { key => 'lst_2', value => 'two' }), 'lst_2', 'POST lst_2, no ttl');
    ($r, $t0, $t1) = timed($A, POST => '/api/data', '{"key":"lst_3","value":{"x":[true]},"ttl":31536000}');
    stored_ok($r, 'lst_3', 'POST lst_3, ttl 31536000');
    my $e3 = read_ok(get($A, 'lst_3'), 'lst_3', { x => [JSON::PP::true] }, 'GET lst_3', ttl => $TTL_MAX, t0 => $t0, t1 => $t1);
    $r = list_of($A, 'prefix=lst_');
    is $r->{status}, 200, 'list: 200' or diag $r->{body};
    is $r->{headers}{'content-type'}, $CT, 'list: Content-Type';
    my ($x1, $x3) = map { defined $_ ? utc($_) : 'missing' } $e1, $e3;
    json_is($r, { status => 'success', data => { items => [
        { key => 'lst_1', value => 1, expires_at => $x1 },
        { key => 'lst_2', value => 'two' },
        { key => 'lst_3', value => { x => [JSON::PP::true] }, expires_at => $x3 },
    ], next_cursor => undef } }, 'list: whole body, expires_at as GET gives it, only where a key has a TTL');
    is $r->{body}, '{"status":"success","data":{"items":[{"key":"lst_1","value":1,"expires_at":"' . $x1 . '"},'
        . '{"key":"lst_2","value":"two"},{"key":"lst_3","value":{"x":[true]},"expires_at":"' . $x3 . '"}],"next_cursor":null}}',
        'list: the exact text (items key, value[, expires_at])';
    $r = list_of($A, 'prefix=lst_&limit=2');
    json_is($r, { status => 'success', data => { items => [
        { key => 'lst_1', value => 1, expires_at => $x1 }, { key => 'lst_2', value => 'two' },
    ], next_cursor => $r->{json}{data}{next_cursor} // 'a cursor' } }, 'list limit=2: the first page');
};

subtest 'INVALID_TTL' => sub {
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'keep', value => 'kept', ttl => 1000 });
    my $etag = stored_ok($r, 'keep', 'setup: keep, ttl 1000');
    my $e = read_ok(get($A, 'keep'), 'keep', 'kept', 'setup: GET keep', ttl => 1000, t0 => $t0, t1 => $t1);
    my @bad = ('0', '-1', '-0', '1.5', '0.5', '31536000.5', '31536001', '1e10', '99999999999999999999',
               '-31536000', '"10"', '""', '"1e1"', 'true', 'false', '[]', '[10]', '{}', '{"s":10}', '"\u0000"');
    for my $t (@bad) {
        $s->error_is(req($A, POST => '/api/data', qq({"key":"bad","value":1,"ttl":$t})), 'INVALID_TTL', "POST ttl $t");
        $s->error_is(req($A, PUT => '/api/data/keep', qq({"value":2,"ttl":$t})), 'INVALID_TTL', "PUT ttl $t");
    }
    $s->error_is(get($A, 'bad'), 'KEY_NOT_FOUND', 'no refused POST stored the key');
    read_ok(get($A, 'keep'), 'keep', 'kept', 'no refused PUT changed the value or the expiry', expires => $e // 0);
    is get($A, 'keep')->{headers}{etag}, $etag, 'nor the ETag';

    # The order: auth, body, key, value, ttl, then the database.
    $s->error_is(req($A, POST => '/api/data', { key => 'bad', value => 1, ttl => 0 }, token => undef),
        'INVALID_TOKEN', 'no token and ttl 0: INVALID_TOKEN');
    $s->error_is(req($A, POST => '/api/data', '{"key":"bad","value":1,"ttl":0'), 'INVALID_JSON',
        'truncated body with ttl 0: INVALID_JSON');
    $s->error_is(req($A, POST => '/api/data', '{"key":"bad","value":1,"ttl":5,"ttl":6}'), 'INVALID_JSON',
        'ttl twice: INVALID_JSON');
    $s->error_is(req($A, POST => '/api/data', { key => '', value => 1, ttl => 0 }), 'INVALID_KEY',
        'POST empty key and ttl 0: INVALID_KEY');
    $s->error_is(req($A, POST => '/api/data', { value => 1, ttl => 'x' }), 'INVALID_KEY',
        'POST no key and ttl "x": INVALID_KEY');
    $s->error_is(req($A, POST => '/api/data', { key => 'bad', value => undef, ttl => 0 }), 'INVALID_VALUE',
        'POST value null and ttl 0: INVALID_VALUE');
    $s->error_is(req($A, POST => '/api/data', { key => 'bad', ttl => -1 }), 'INVALID_VALUE',
        'POST no value and ttl -1: INVALID_VALUE');
    $s->error_is(req($A, PUT => '/api/data/keep', { value => undef, ttl => 0 }), 'INVALID_VALUE',
        'PUT value null and ttl 0: INVALID_VALUE');
    $s->error_is(req($A, PUT => '/api/data/keep', { ttl => JSON::PP::true }), 'INVALID_VALUE',
        'PUT no value and ttl true: INVALID_VALUE');
    $s->error_is(req($A, PUT => '/api/data/%01', { value => 1, ttl => 0 }), 'INVALID_KEY',
        'PUT a bad URL key and ttl 0: INVALID_KEY');
    $s->error_is(req($A, POST => '/api/data', { key => 'keep', value => 1, ttl => 0 }), 'INVALID_TTL',
        'POST an existing key with ttl 0: INVALID_TTL before KEY_EXISTS');
    $s->error_is(req($A, PUT => '/api/data/never', { value => 1, ttl => 1.5 }), 'INVALID_TTL',
        'PUT a missing key with ttl 1.5: INVALID_TTL before KEY_NOT_FOUND');
    $s->error_is(req($A, PUT => '/api/data/keep', { value => 1, ttl => '10' }, headers => { 'If-Match' => '"0000000000000000"' }),
        'INVALID_TTL', 'PUT with a wrong If-Match and ttl "10": INVALID_TTL before PRECONDITION_FAILED');
    read_ok(get($A, 'keep'), 'keep', 'kept', 'keep is still as it was', expires => $e // 0);
};

subtest 'PUT replaces value and expiry; PATCH and a refused write keep it' => sub {
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'rep', value => 1, ttl => 1000 });
    stored_ok($r, 'rep', 'POST rep, ttl 1000');
    read_ok(get($A, 'rep'), 'rep', 1, 'GET: expires_at', ttl => 1000, t0 => $t0, t1 => $t1);
    updated_ok(req($A, PUT => '/api/data/rep', { value => 2 }), 'PUT without ttl');
    read_ok(get($A, 'rep'), 'rep', 2, 'GET: the expiry is gone (as Redis SET)');
    ($r, $t0, $t1) = timed($A, PUT => '/api/data/rep', { value => 3, ttl => 2000 });
    updated_ok($r, 'PUT with ttl 2000 onto a key without one');
    read_ok(get($A, 'rep'), 'rep', 3, 'GET: + 2000 s', ttl => 2000, t0 => $t0, t1 => $t1);
    updated_ok(req($A, PUT => '/api/data/rep', '{"value":4,"ttl":null}'), 'PUT with ttl null');
    read_ok(get($A, 'rep'), 'rep', 4, 'GET: no expiry');
    ($r, $t0, $t1) = timed($A, PUT => '/api/data/rep', { value => { a => 1 }, ttl => 300 });
    my $etag = updated_ok($r, 'PUT with ttl 300');
    my $e = read_ok(get($A, 'rep'), 'rep', { a => 1 }, 'GET: + 300 s', ttl => 300, t0 => $t0, t1 => $t1);
    $e //= 0;

    $s->error_is(req($A, PUT => '/api/data/rep', { value => 5 }, headers => { 'If-Match' => '"0000000000000000"' }),
        'PRECONDITION_FAILED', 'PUT without ttl, wrong If-Match: 412');
    read_ok(get($A, 'rep'), 'rep', { a => 1 }, 'the refused PUT kept value and expiry', expires => $e);
    updated_ok(req($A, PATCH => '/api/data/rep', '{"b":2}', ct => 'application/merge-patch+json'), 'PATCH {"b":2}');
    read_ok(get($A, 'rep'), 'rep', { a => 1, b => 2 }, 'GET: PATCH kept the expiry', expires => $e, text => '{"a":1,"b":2}');
    updated_ok(req($A, PATCH => '/api/data/rep', '{"a":null}', ct => 'application/merge-patch+json',
        headers => { 'If-Match' => get($A, 'rep')->{headers}{etag} // 'x' }), 'PATCH with If-Match');
    read_ok(get($A, 'rep'), 'rep', { b => 2 }, 'GET: still the same expiry', expires => $e);
    updated_ok(req($A, PATCH => '/api/data/tnone', '{"x":1}', ct => 'application/merge-patch+json'),
        'PATCH a key without a TTL');
    read_ok(get($A, 'tnone'), 'tnone', { x => 1 }, 'GET: PATCH gives it none');
};

subtest 'ttl 1: there right after the write, gone within a deadline, never early' => sub {
    stored_ok(req($B, POST => '/api/data', { key => 'exp1', value => 'B keeps it' }), 'exp1',
        'setup: B stores a key of the same name, without a TTL');
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'exp1', value => 'soon', ttl => 1 });
    my $etag = stored_ok($r, 'exp1', 'POST exp1, ttl 1');
    read_ok(get($A, 'exp1'), 'exp1', 'soon', 'GET right after the write: there, + 1 s', ttl => 1, t0 => $t0, t1 => $t1);
    my ($gone, $tg) = wait_expired($s, $A, 'exp1', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'GET: KEY_NOT_FOUND within 10 s');
    ok $tg >= $t0 + 1, sprintf 'and not before its second had passed (gone %.2f s after the write began)', $tg - $t0;
    is rows_of($s, $A, 'exp1'), 1, 'its row is still in the table: nothing purged it, the statements hide it';

    $s->error_is(get($A, 'exp1'), 'KEY_NOT_FOUND', 'GET again');
    $r = req($A, HEAD => '/api/data/exp1');
    is $r->{status}, 404, 'HEAD: 404';
    is $r->{body}, '', 'HEAD: no body';
    $s->error_is(req($A, GET => '/api/data/exp1', undef, headers => { 'If-None-Match' => $etag // '"x"' }),
        'KEY_NOT_FOUND', 'GET with If-None-Match of its old ETag: 404, not 304');
    $s->error_is(req($A, PUT => '/api/data/exp1', { value => 'revived' }), 'KEY_NOT_FOUND', 'PUT');
    $s->error_is(req($A, PUT => '/api/data/exp1', { value => 'revived', ttl => 100 }), 'KEY_NOT_FOUND', 'PUT with a ttl');
    $s->error_is(req($A, PUT => '/api/data/exp1', { value => 'revived' }, headers => { 'If-Match' => $etag // '"x"' }),
        'KEY_NOT_FOUND', 'PUT with If-Match of its old ETag: 404, not 412 and not 200');
    $s->error_is(req($A, PATCH => '/api/data/exp1', '{"a":1}', ct => 'application/merge-patch+json'), 'KEY_NOT_FOUND', 'PATCH');
    $s->error_is(req($A, PATCH => '/api/data/exp1', '{"a":1}', ct => 'application/merge-patch+json',
        headers => { 'If-Match' => $etag // '"x"' }), 'KEY_NOT_FOUND', 'PATCH with If-Match of its old ETag');
    $s->error_is(req($A, DELETE => '/api/data/exp1', undef, headers => { 'If-Match' => $etag // '"x"' }),
        'KEY_NOT_FOUND', 'DELETE with If-Match of its old ETag');
    $s->error_is(req($A, DELETE => '/api/data/exp1'), 'KEY_NOT_FOUND', 'DELETE');
    json_is(list_of($A, 'prefix=exp'), { status => 'success', data => { items => [], next_cursor => undef } },
        'the listing does not show it');
    $s->error_is(get($A, 'exp1'), 'KEY_NOT_FOUND', 'no refused write revived it');
    read_ok(get($B, 'exp1'), 'exp1', 'B keeps it', "B's key of the same name is untouched");

    ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'exp1', value => 'again' });
    my $etag2 = stored_ok($r, 'exp1', 'POST of the expired key: 201, created anew');
    isnt $etag2, $etag, 'with a new ETag';
    read_ok(get($A, 'exp1'), 'exp1', 'again', 'GET: the new value, no expires_at');
    is get($A, 'exp1')->{headers}{etag}, $etag2, 'and the new ETag';
    is rows_of($s, $A, 'exp1'), 1, 'one row';
    $s->error_is(req($A, POST => '/api/data', { key => 'exp1', value => 'third' }), 'KEY_EXISTS',
        'it does not expire any more: a second POST is KEY_EXISTS');
};

subtest 'expired keys leave the listing, also a page of limit=1' => sub {
    stored_ok(req($A, POST => '/api/data', { key => 'pg_c', value => 'c' }), 'pg_c', 'POST pg_c, no ttl');
    my ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'pg_a', value => 'a', ttl => 1 });
    stored_ok($r, 'pg_a', 'POST pg_a, ttl 1');
    stored_ok(req($A, POST => '/api/data', { key => 'pg_b', value => 'b', ttl => 1 }), 'pg_b', 'POST pg_b, ttl 1');
    $r = list_of($A, 'prefix=pg_');
    is_deeply [ map { $_->{key} } @{ $r->{json}{data}{items} // [] } ], [qw(pg_a pg_b pg_c)],
        'right after: all three listed' or diag $r->{body};
    my ($gone) = wait_expired($s, $A, 'pg_b', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'pg_b expired within 10 s');
    $s->error_is(get($A, 'pg_a'), 'KEY_NOT_FOUND', 'and pg_a before it');
    my $c = { key => 'pg_c', value => 'c' };
    json_is(list_of($A, 'prefix=pg_'), { status => 'success', data => { items => [$c], next_cursor => undef } },
        'list: only pg_c');
    json_is(list_of($A, 'prefix=pg_&limit=1'), { status => 'success', data => { items => [$c], next_cursor => undef } },
        'list limit=1: pg_c, the first live key, and no next page');
    json_is(list_of($A, 'prefix=pg_&limit=2'), { status => 'success', data => { items => [$c], next_cursor => undef } },
        'list limit=2: the same');

    ($r, $t0, $t1) = timed($A, POST => '/api/data', { key => 'pg_a', value => 'a2', ttl => 1 });
    stored_ok($r, 'pg_a', 'POST pg_a anew, ttl 1 again');
    read_ok(get($A, 'pg_a'), 'pg_a', 'a2', 'GET: there, + 1 s', ttl => 1, t0 => $t0, t1 => $t1);
    my $tg;
    ($gone, $tg) = wait_expired($s, $A, 'pg_a', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'and it expires again, as its new ttl says');
    ok $tg >= $t0 + 1, sprintf 'not early (%.2f s)', $tg - $t0;
};

subtest 'expired keys are purged in the background (token_purge_interval 1)' => sub {
    $s->restart_app(token_purge_interval => 1);
    stored_ok(req($A, POST => '/api/data', { key => "prg$_", value => $_, ttl => 1 }), "prg$_", "POST prg$_, ttl 1")
        for 1 .. 5;
    stored_ok(req($A, POST => '/api/data', { key => 'prgkeep', value => 'stays' }), 'prgkeep', 'POST prgkeep, no ttl');
    is rows_of($s, $A, 'prg%'), 6, 'six rows';
    my ($gone) = wait_expired($s, $A, 'prg5', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'the five expire');
    my $ok = KVTest::poll_until(20, sub {
        # Requests to both pools: a worker purges after answering one.
        $s->request(GET => '/api/health') for 1 .. 4;
        get($A, 'prgkeep');
        $s->request(POST => '/api/token', { json => { username => 'nobody_t31', password => 'x' } });
        rows_of($s, $A, 'prg%') == 1 });
    ok $ok, sprintf('the expired rows are deleted by the workers (in %.1f s)', $ok // -1)
        or diag 'rows left: ' . rows_of($s, $A, 'prg%');
    is $s->sql("SELECT k FROM data WHERE user_id = $A->{user_id} AND k LIKE 'prg%'")->[0][0], 'prgkeep',
        'the key without a TTL stays';
    is rows_of($s, $A, 'pg_%'), 1, 'the keys that expired earlier are purged too (pg_c stays)';
    is rows_of($s, $A, 'exp1'), 1, 'exp1, created anew without a TTL, stays';
    read_ok(get($A, 'prgkeep'), 'prgkeep', 'stays', 'GET prgkeep');
    read_ok(get($B, 'exp1'), 'exp1', 'B keeps it', "B's key stays");
    stored_ok(req($A, POST => '/api/data', { key => 'prg1', value => 'new' }), 'prg1', 'POST of a purged key: 201');

    # The purge frees what the expiry already freed, once: the usage of a
    # user whose expired keys were purged counts only the live ones.
    my $P = $s->new_user('ttl_p');
    stored_ok(req($P, POST => '/api/data', { key => "pp$_", value => 'x' x 10, ttl => 1 }), "pp$_", "POST pp$_, ttl 1")
        for 1 .. 3;
    stored_ok(req($P, POST => '/api/data', { key => 'live', value => 'v' }), 'live', 'POST live: 4 + 3 bytes');
    ($gone) = wait_expired($s, $P, 'pp3', 10);
    $s->error_is($gone, 'KEY_NOT_FOUND', 'the three expire');
    usage_ok($s, $P, 1, 7, 'usage after the expiry: 1 key, 7 bytes');
    ok(KVTest::poll_until(20, sub {
        $s->request(GET => '/api/health') for 1 .. 4;
        get($P, 'live');
        rows_of($s, $P) == 1 }), 'the three are purged');
    usage_ok($s, $P, 1, 7, 'usage after the purge: still 1 key, 7 bytes');
    stored_ok(req($P, POST => '/api/data', { key => 'pp1', value => 'y' }), 'pp1', 'POST pp1 again: 3 + 3 bytes');
    usage_ok($s, $P, 2, 13, 'usage 2 keys, 13 bytes');

    # More expired rows than one batch of the purge: they go round after
    # round (rows written by SQL, expired a second ago).
    my $M = $s->new_user('ttl_m');
    $s->sql("INSERT INTO data (user_id, k, v, version, expires_at) SELECT $M->{user_id}, CONCAT('bulk', seq), '1', seq,"
        . " UTC_TIMESTAMP(6) - INTERVAL 1 SECOND FROM seq_1_to_2500");
    is rows_of($s, $M), 2500, 'setup: 2500 expired rows';
    json_is(list_of($M, 'limit=10'), { status => 'success', data => { items => [], next_cursor => undef } },
        'the listing shows none of them');
    my $t = KVTest::poll_until(60, sub {
        $s->request(GET => '/api/health') for 1 .. 4;
        get($M, 'x');
        rows_of($s, $M) == 0 });
    ok $t, sprintf 'the purge deletes all 2500, batch after batch (%.1f s)', $t // -1
        or diag rows_of($s, $M) . ' rows left';
    usage_ok($s, $M, 0, 0, 'their usage is 0');
};

$s->stop;
done_testing;
