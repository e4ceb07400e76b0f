# POST /api/batch (API.md "Batch and changes"): up to 100 operations in
# order, in one transaction, all or nothing.  Each operation's answer is
# in data.results; the first that fails is the answer (its own error) with
# data.index, and nothing of the batch stays (values, the change feed).
# A malformed list is INVALID_BATCH; each operation's fields are checked
# as its single request checks them, before anything runs; a check op
# asserts an ETag or absence; the quota holds the batch's net effect; 16
# truly concurrent check+put batches on one ETag give exactly one 200.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is);
use KVLoad;

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $s = KVTest->start(workers => 4, quota_keys => 6);
my $u = $s->new_user('b35');
my %A = (Authorization => "Bearer $u->{token}");
my $JS = JSON::PP->new->utf8->canonical;

sub batch {
    my ($ops, %o) = @_;
    return $s->request(POST => '/api/batch', { headers => { %{ $o{h} // \%A },
        'Content-Type' => 'application/json' }, body => ref $ops ? $JS->encode({ ops => $ops }) : $ops });
}

sub get {
    my ($k) = @_;
    return $s->request(GET => "/api/data/$k", { headers => \%A });
}

# An error of operation $index (undef: of the list), exactly.
sub batch_error_is {
    my ($r, $code, $index, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $e = $KVTest::ERRORS{$code} or die "unknown code $code";
    is $r->{status}, $e->[0], "$name: $e->[0]";
    json_is($r, { status => 'error', code => $code, message => $e->[1],
        defined $index ? (data => { index => $index }) : () }, "$name: the whole body");
}

sub rev { $s->request(GET => '/api/changes', { headers => \%A })->{json}{data}{last_rev} }

# Every op, all applied.
my $e0 = $s->request(POST => '/api/data', { headers => { %A, 'Content-Type' => 'application/json' },
    body => '{"key":"a","value":{"n":1}}' })->{headers}{etag};
my $r = batch([
    { op => 'check', key => 'a', if_match => $e0 },
    { op => 'check', key => 'none', if_match => undef },
    { op => 'create', key => 'b', value => [1, 'two'], ttl => 60 },
    { op => 'put', key => 'a', value => { n => 2 }, if_match => $e0 },
    { op => 'patch', key => 'a', value => { m => 3 } },
    { op => 'get', key => 'a' },
    { op => 'delete', key => 'b' },
    { op => 'get', key => 'b/ ☃' },
]);
is $r->{status}, 404, 'a get of a missing key fails the batch: 404';
json_is($r, { status => 'error', code => 'KEY_NOT_FOUND', message => $KVTest::ERRORS{KEY_NOT_FOUND}[1],
    data => { index => 7 } }, 'with its index, 7');
json_is(get('a'), { status => 'success', data => { key => 'a', value => { n => 1 } } }, 'and nothing of it stayed: a');
is get('b')->{status}, 404, 'nor b';
is rev(), 1, 'nor any revision';

$r = batch([
    { op => 'check', key => 'a', if_match => $e0 },
    { op => 'check', key => 'none', if_match => undef },
    { op => 'create', key => 'b', value => [1, 'two'], ttl => 60 },
    { op => 'put', key => 'a', value => { n => 2 }, if_match => $e0 },
    { op => 'patch', key => 'a', value => { m => 3 } },
    { op => 'get', key => 'a' },
    { op => 'delete', key => 'b' },
    { op => 'create', key => 'b/ ☃', value => 'snow' },
]);
is $r->{status}, 200, 'every op: 200' or diag $r->{body};
my @res = @{ $r->{json}{data}{results} // [] };
my $ea = get('a')->{headers}{etag};
json_is($r, { status => 'success', message => 'Batch applied.', data => { results => [
    { status => 200 }, { status => 200 },
    { status => 201, etag => $res[2]{etag} },
    { status => 200, etag => $res[3]{etag} },
    { status => 200, etag => $ea },
    { status => 200, etag => $ea, value => { n => 2, m => 3 } },
    { status => 200 },
    { status => 201, etag => $res[7]{etag} },
] } }, 'the whole body: each op\'s status, ETag and the get\'s value');
like $_, qr/^"[0-9a-f]{16}"$/, 'an ETag' for map { $_->{etag} } @res[2, 3, 7];
json_is(get('a'), { status => 'success', data => { key => 'a', value => { n => 2, m => 3 } } }, 'a was written');
is get('b')->{status}, 404, 'b was created and deleted';
is get('b%2F%20%E2%98%83')->{status}, 200, 'b/ ☃ exists';
my $f = $s->request(GET => '/api/changes?since=1', { headers => \%A })->{json}{data};
is_deeply([ map { "$_->{rev} $_->{op} $_->{key}" } @{ $f->{items} } ],
    [ '2 put b', '3 put a', '4 put a', '5 delete b', "6 put b/ \x{2603}" ],
    'each write of the batch took a revision, in order');

# A failed op rolls back what the ones before it did.
$r = batch([ { op => 'put', key => 'a', value => 'gone' }, { op => 'create', key => 'a', value => 1 } ]);
batch_error_is($r, 'KEY_EXISTS', 1, 'create of an existing key, second');
json_is(get('a'), { status => 'success', data => { key => 'a', value => { n => 2, m => 3 } } }, 'the put before it was rolled back');
$r = batch([ { op => 'check', key => 'a', if_match => '"0000000000000000"' } ]);
batch_error_is($r, 'PRECONDITION_FAILED', 0, 'check with a stale ETag');
$r = batch([ { op => 'check', key => 'a', if_match => undef } ]);
batch_error_is($r, 'PRECONDITION_FAILED', 0, 'check that an existing key is absent');
$r = batch([ { op => 'check', key => 'none', if_match => '*' } ]);
batch_error_is($r, 'PRECONDITION_FAILED', 0, 'check "*" of a missing key');
$r = batch([ { op => 'delete', key => 'a', if_match => undef } ]);
batch_error_is($r, 'PRECONDITION_FAILED', 0, 'delete with if_match null of an existing key');
$r = batch([ { op => 'put', key => 'none', value => 1, if_match => undef } ]);
batch_error_is($r, 'KEY_NOT_FOUND', 0, 'put with if_match null of a missing key');
$r = batch([ { op => 'patch', key => 'a', value => { x => 1 }, if_match => '"0000000000000000"' } ]);
batch_error_is($r, 'PRECONDITION_FAILED', 0, 'patch with a stale ETag');
is rev(), 6, 'no failed batch took a revision';

# The form of the list, then each op's fields, before anything runs.
my $big = 'x' x 300;
for my $c (
    [ '{}', 'no ops' ], [ '{"ops":{}}', 'ops an object' ], [ '{"ops":[]}', 'no op' ],
    [ '{"ops":"get"}', 'ops a string' ], [ '{"ops":null}', 'ops null' ],
    [ $JS->encode({ ops => [ map { { op => 'get', key => "k$_" } } 1 .. 101 ] }), '101 ops', 100 ],
    [ '{"ops":[1]}', 'an op a number', 0 ], [ '{"ops":[[]]}', 'an op an array', 0 ],
    [ '{"ops":[{"op":"get","key":"a"},{"key":"a"}]}', 'an op without op', 1 ],
    [ '{"ops":[{"op":"upsert","key":"a"}]}', 'an unknown op', 0 ],
    [ '{"ops":[{"op":1,"key":"a"}]}', 'op a number', 0 ],
    [ '{"ops":[{"op":"GET","key":"a"}]}', 'op in capitals', 0 ],
    [ '{"ops":[{"op":"put","key":"a","value":1,"if_match":1}]}', 'if_match a number', 0 ],
    [ '{"ops":[{"op":"delete","key":"a","if_match":["x"]}]}', 'if_match an array', 0 ],
    [ '{"ops":[{"op":"check","key":"a"}]}', 'check without if_match', 0 ],
    [ '{"ops":[{"op":"get","key":"a\u0000b"}]}', 'a U+0000 in a key' ],
    [ '{"ops":[{"op":"create","key":"a","value":"\u0000"}]}', 'a U+0000 in a value' ],
) {
    batch_error_is(batch($c->[0]), 'INVALID_BATCH', $c->[2], $c->[1]);
}
for my $c (
    [ [ { op => 'get', key => 'a' }, { op => 'get', key => '' } ], 'INVALID_KEY', 1, 'an empty key' ],
    [ [ { op => 'get', key => 5 } ], 'INVALID_KEY', 0, 'a key a number' ],
    [ [ { op => 'get', key => $big } ], 'INVALID_KEY', 0, 'a key of 300 bytes' ],
    [ [ { op => 'create', key => 'n', value => undef } ], 'INVALID_VALUE', 0, 'a value null' ],
    [ [ { op => 'create', key => 'n' } ], 'INVALID_VALUE', 0, 'no value' ],
    [ [ { op => 'put', key => 'a', value => 1, ttl => 0 } ], 'INVALID_TTL', 0, 'a ttl 0' ],
    [ [ { op => 'put', key => 'a', value => 1, ttl => '10' } ], 'INVALID_TTL', 0, 'a ttl a string' ],
    [ [ { op => 'patch', key => 'a', value => undef } ], 'INVALID_VALUE', 0, 'a patch null' ],
    # Checked before anything runs: the failing create would come first.
    [ [ { op => 'create', key => 'a', value => 1 }, { op => 'put', key => 'a', value => 1, ttl => -1 } ],
        'INVALID_TTL', 1, 'fields first, though op 0 would fail when run' ],
) {
    batch_error_is(batch($c->[0]), $c->[1], $c->[2], $c->[3]);
}
batch_error_is(batch('{"ops":[{"op":"get","key":"a","key":"b"}]}'), 'INVALID_JSON', undef, 'a duplicate member');
batch_error_is(batch('[]'), 'INVALID_JSON', undef, 'a body that is an array');
$r = batch([ { op => 'get', key => 'a' } ], h => {});
is $r->{status}, 401, 'no token: 401';
$r = batch('{"ops":[]}', h => { Authorization => 'Bearer ' . ('x' x 43) });
$s->error_is($r, 'INVALID_TOKEN', 'a wrong token comes before INVALID_BATCH');
is rev(), 6, 'nothing ran';

# 100 ops is the most; the quota (6 keys; 2 now) holds the net effect.
$r = batch([ map { { op => 'get', key => 'a' } } 1 .. 100 ]);
is $r->{status}, 200, '100 ops: 200';
is scalar @{ $r->{json}{data}{results} // [] }, 100, '100 results';
$r = batch([ map { { op => 'create', key => "q$_", value => $_ } } 1 .. 5 ]);
batch_error_is($r, 'QUOTA_EXCEEDED', undef, 'five more keys than the quota has room for (4)');
is $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id}")->[0][0], 2, 'none stored';
$r = batch([ (map { { op => 'create', key => "q$_", value => $_ } } 1 .. 5), { op => 'delete', key => 'a' } ]);
is $r->{status}, 200, 'five creates and a delete: the net effect fits' or diag $r->{body};
is $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id}")->[0][0], 6, 'six keys';

# 16 concurrent check+put batches holding one ETag: exactly one wins.
my $v = $s->new_user('b35race');
my %V = (Authorization => "Bearer $v->{token}", 'Content-Type' => 'application/json');
my $ev = $s->request(POST => '/api/data', { headers => \%V, body => '{"key":"c","value":0}' })->{headers}{etag};
my @spreads;
my @w = KVLoad::race($s, '16 check+put', 16, sub {
    (POST => '/api/batch', op => 'batch', val => $_[0] + 1, headers => \%V,
        body => $JS->encode({ ops => [ { op => 'check', key => 'c', if_match => $ev },
            { op => 'put', key => 'c', value => $_[0] + 1 } ] }))
}, \@spreads);
is_deeply(KVLoad::statuses(@w), { 200 => 1, '412 PRECONDITION_FAILED' => 15 },
    '16 racing check+put batches: one 200, fifteen 412');
my ($won) = grep { $_->{status} == 200 } @w;
my $c = $s->request(GET => '/api/data/c', { headers => \%V });
is $c->{json}{data}{value}, $won && $won->{val}, 'the stored value is the winner\'s';
is $s->request(GET => '/api/changes', { headers => \%V })->{json}{data}{last_rev}, 2,
    'two revisions: the create and the one winning put';
diag "races: @spreads";

done_testing;
