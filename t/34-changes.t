# The change feed, GET /api/changes (API.md "Batch and changes"): every
# write of a user (POST, PUT, PATCH, DELETE, an expiry when purged) takes
# the user's next revision, 1, 2, 3... without gaps, each logged with its
# key, op and the new ETag; a POST onto a live key, a refused write and a
# write that failed its If-Match take none; one user never sees
# another's; `since` and `limit` page through it (`more`, `last_rev`);
# bad queries are INVALID_QUERY; a `since` before what the purge kept
# (changes_retention) or after the user's last revision is 410
# CHANGES_EXPIRED with data.last_rev, from which a client resyncs; 30
# truly concurrent writes give revisions 1..30 exactly, one each.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use KVTest qw(json_is poll_until);
use KVLoad;

my $s = KVTest->start(workers => 4, quota_keys => 34);
my $u = $s->new_user('c34');
my $v = $s->new_user('c34other');
my %A = (Authorization => "Bearer $u->{token}");
my $J = { %A, 'Content-Type' => 'application/json' };

sub feed {
    my ($q, %o) = @_;
    return $s->request(GET => "/api/changes$q", { headers => $o{h} // \%A });
}

sub feed_is {
    my ($q, $want, $name) = @_;
    my $r = feed($q);
    is $r->{status}, 200, "$name: 200" or diag $r->{body};
    json_is($r, { status => 'success', data => $want }, "$name: the whole body");
    return $r;
}

sub write_ok {
    my ($m, $p, $body, $status, $name, %h) = @_;
    my $r = $s->request($m => $p, { headers => { %$J, %h }, defined $body ? (body => $body) : () });
    is $r->{status}, $status, "$name: $status" or diag $r->{body};
    return $r->{headers}{etag};
}

feed_is('', { items => [], last_rev => 0, more => JSON::PP::false }, 'a new user: an empty feed');

# Each route's write, and the writes that must take no revision.
my @e;
push @e, write_ok(POST => '/api/data', '{"key":"a","value":1}', 201, 'POST a');
write_ok(POST => '/api/data', '{"key":"a","value":2}', 409, 'POST a again (KEY_EXISTS: no revision)');
push @e, write_ok(PUT => '/api/data/a', '{"value":{"x":1}}', 200, 'PUT a');
write_ok(PUT => '/api/data/a', '{"value":3}', 412, 'PUT a, stale If-Match (no revision)',
    'If-Match' => '"0000000000000000"');
write_ok(PUT => '/api/data/none', '{"value":3}', 404, 'PUT none (no revision)');
push @e, write_ok(PATCH => '/api/data/a', '{"y":2}', 200, 'PATCH a');
push @e, write_ok(POST => '/api/data', '{"key":"b/ c☃","value":[true]}', 201, 'POST b/ c☃');
write_ok(DELETE => '/api/data/a', undef, 200, 'DELETE a');
write_ok(DELETE => '/api/data/a', undef, 404, 'DELETE a again (no revision)');
# The other user's writes are the other user's feed.
my $vetag = $s->request(POST => '/api/data', { headers => { Authorization => "Bearer $v->{token}",
    'Content-Type' => 'application/json' }, body => '{"key":"a","value":"theirs"}' })->{headers}{etag};

my @all = (
    { rev => 1, key => 'a', op => 'put', etag => $e[0] },
    { rev => 2, key => 'a', op => 'put', etag => $e[1] },
    { rev => 3, key => 'a', op => 'put', etag => $e[2] },
    { rev => 4, key => "b/ c\x{2603}", op => 'put', etag => $e[3] },
    { rev => 5, key => 'a', op => 'delete' },
);
feed_is('', { items => \@all, last_rev => 5, more => JSON::PP::false }, 'the whole feed');
feed_is('?since=0&limit=1000', { items => \@all, last_rev => 5, more => JSON::PP::false }, 'since=0, limit=1000');
feed_is('?since=1&limit=2', { items => [ @all[1, 2] ], last_rev => 3, more => JSON::PP::true }, 'a page: since=1, limit=2');
feed_is('?since=3&limit=2', { items => [ @all[3, 4] ], last_rev => 5, more => JSON::PP::false }, 'the last page');
feed_is('?since=5', { items => [], last_rev => 5, more => JSON::PP::false }, 'since the last revision: nothing');
feed_is('?since=4&limit=1', { items => [ $all[4] ], last_rev => 5, more => JSON::PP::false },
    'a page that ends at the last revision has no more');
my $r = feed('', h => { Authorization => "Bearer $v->{token}" });
json_is($r, { status => 'success', data => { items => [ { rev => 1, key => 'a', op => 'put',
    etag => $vetag } ], last_rev => 1, more => JSON::PP::false } },
    'the other user sees only theirs, from revision 1');

# Quota refusals take no revision (34 keys: b and 33 more, then 507).
write_ok(POST => '/api/data', qq({"key":"q$_","value":$_}), 201, "POST q$_") for 1 .. 33;
write_ok(POST => '/api/data', '{"key":"q34","value":34}', 507, 'POST past the quota (no revision)');
is feed('?since=5')->{json}{data}{last_rev}, 38, '33 more revisions, none for the refused write';

# Bad queries.  (The whole body of each, by error_is.)
for my $q ('?since=-1', '?since=x', '?since=', '?since=1.5', '?limit=0', '?limit=1001', '?limit=x',
    '?since=1234567890123456789') {
    $s->error_is(feed($q), 'INVALID_QUERY', "GET /api/changes$q");
}
$s->error_is(feed('', h => {}), 'INVALID_TOKEN', 'no token');
$s->error_is(feed('', h => { Authorization => 'Bearer ' . ('x' x 43) }), 'INVALID_TOKEN', 'a wrong token');

# A since the user's history does not have (a restore's): 410.
$r = feed('?since=39');
is $r->{status}, 410, 'since after the last revision: 410';
json_is($r, { status => 'error', code => 'CHANGES_EXPIRED', message => $KVTest::ERRORS{CHANGES_EXPIRED}[1],
    data => { last_rev => 38 } }, '410: the whole body, with last_rev to resync from');

# Expiry enters the feed as a delete when it is purged, and old changes
# go after changes_retention: since before them is 410.
{
    my $p = KVTest->start(token_purge_interval => 1, changes_retention => 2);
    my $w = $p->new_user('c34purge');
    my $h = { Authorization => "Bearer $w->{token}", 'Content-Type' => 'application/json' };
    my $etag = $p->request(POST => '/api/data', { headers => $h, body => '{"key":"t","value":1,"ttl":1}' })->{headers}{etag};
    my $f;
    ok poll_until(10, sub {
        $f = $p->request(GET => '/api/changes', { headers => $h });
        $f->{status} == 200 && $f->{json}{data}{last_rev} == 2;
    }), 'the expired key is purged within 10 s' or diag $f->{body};
    json_is($f, { status => 'success', data => { items => [ { rev => 1, key => 't', op => 'put', etag => $etag },
        { rev => 2, key => 't', op => 'delete' } ], last_rev => 2, more => JSON::PP::false } },
        'the purge of an expired key is a delete in the feed');
    ok poll_until(15, sub {
        $f = $p->request(GET => '/api/changes', { headers => $h });
        $f->{status} == 410;
    }), 'the changes go after changes_retention: since=0 is then 410' or diag $f->{body};
    json_is($f, { status => 'error', code => 'CHANGES_EXPIRED', message => $KVTest::ERRORS{CHANGES_EXPIRED}[1],
        data => { last_rev => 2 } }, '410 with last_rev');
    json_is($p->request(GET => '/api/changes?since=2', { headers => $h }),
        { status => 'success', data => { items => [], last_rev => 2, more => JSON::PP::false } },
        'since=last_rev goes on');
    $p->stop;
}

# 30 truly concurrent writes of one user: revisions 1..30, each once,
# each the revision of one of the 30 writes.
my $c = $s->new_user('c34race');
my %CA = (Authorization => "Bearer $c->{token}");
my @spreads;
my @w = KVLoad::race($s, '30 writes', 30, sub {
    (POST => '/api/data', op => 'create', key => "r$_[0]", val => $_[0],
        headers => \%CA, body => qq({"key":"r$_[0]","value":$_[0]}))
}, \@spreads);
is_deeply(KVLoad::statuses(@w), { 201 => 30 }, '30 concurrent POSTs: all 201');
$r = $s->request(GET => '/api/changes', { headers => \%CA });
my @items = @{ $r->{json}{data}{items} // [] };
is_deeply([ map { $_->{rev} } @items ], [ 1 .. 30 ], 'revisions 1..30, in order, no gaps');
is_deeply([ sort map { $_->{key} } @items ], [ sort map { "r$_" } 0 .. 29 ], 'one for each write');
is $r->{json}{data}{last_rev}, 30, 'last_rev 30';
diag "races: @spreads";

done_testing;
