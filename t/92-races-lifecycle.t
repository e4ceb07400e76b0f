# Races of the data lifecycle (API.md "Data lifecycle", issue 15), with
# the barrier of t/92-races.t: every client has sent all of its request
# but the last byte, waits on a pipe the parent closes, then sends that
# byte at the same moment.  The quota is enforced in the write's own
# transaction, so concurrency cannot pass it: 40 POSTs of 40 new keys
# against quota_keys 20 give exactly 20 201s and 20 507s, 20 rows, the
# winners' keys and no other, and a usage that matches the table.  50
# PATCHes each setting a member of its own in one object all answer 200
# and the value ends with all 50 members and the one it had (no update
# lost).  20 PUTs each growing its own key against quota_bytes 2000
# succeed exactly as many times as the bytes allow (9 of 20), the others
# are 507 and changed nothing, and the table's sum stays within the quota
# and matches the usage.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use KVTest qw(json_is kpath);
use KVLoad;
use KVLife qw(:all);

my %Q = (quota_keys => 20, quota_bytes => 2000);
my $s = KVTest->start(workers => 4, %Q);
my @spreads;

sub race { my ($name, $n, $req) = @_; KVLoad::race($s, $name, $n, $req, \@spreads) }
sub table_bytes { $s->sql("SELECT COALESCE(SUM(LENGTH(k) + LENGTH(v)), 0) FROM data WHERE user_id = $_[0]{user_id}")->[0][0] }

subtest '40 POSTs of new keys against quota_keys 20' => sub {
    my $u = $s->new_user('r_keys');
    my %auth = (Authorization => "Bearer $u->{token}");
    my @r = race('POST 40 keys', 40, sub {
        (POST => '/api/data', op => 'create', key => "r$_[0]", val => $_[0],
            headers => \%auth, body => qq({"key":"r$_[0]","value":$_[0]}))
    });
    is_deeply KVLoad::statuses(@r), { 201 => 20, '507 QUOTA_EXCEEDED' => 20 },
        'exactly 20 answered 201 and 20 507 QUOTA_EXCEEDED';
    KVLoad::envelopes_ok('POST 40 keys', @r);
    is rows_of($s, $u), 20, 'exactly 20 rows';
    my @won = sort map { $_->{key} } grep { $_->{status} == 201 } @r;
    is_deeply [ map { $_->[0] } @{ $s->sql("SELECT k FROM data WHERE user_id = $u->{user_id} ORDER BY k") } ], \@won,
        'the rows are the keys that got 201';
    my $bytes = 0;
    $bytes += length($_->{key}) + length($_->{val}) for grep { $_->{status} == 201 } @r;
    is table_bytes($u), $bytes, "the table holds their $bytes bytes";
    usage_ok($s, $u, 20, $bytes, 'usage: 20 keys and those bytes', %Q);
    $s->error_is(post_kv($s, $u, 'r_late', 1), 'QUOTA_EXCEEDED', 'a 41st POST afterwards: QUOTA_EXCEEDED');
};

subtest '50 PATCHes of 50 members of one object' => sub {
    my $u = $s->new_user('r_patch');
    my %h = (Authorization => "Bearer $u->{token}", 'Content-Type' => 'application/merge-patch+json');
    stored_ok(post_kv($s, $u, 'obj', { base => 0 }), 'obj', 'setup: obj is {"base":0}');
    my @r = race('PATCH 50 members', 50, sub {
        (PATCH => '/api/data/obj', op => 'patch', key => 'obj', val => "m$_[0]",
            headers => \%h, body => qq({"m$_[0]":$_[0]}))
    });
    is_deeply KVLoad::statuses(@r), { 200 => 50 }, 'all 50 answered 200';
    KVLoad::envelopes_ok('PATCH 50 members', @r);
    my $r = dreq($s, $u, GET => '/api/data/obj');
    read_ok($r, 'obj', { base => 0, map { ("m$_" => 0 + $_) } 0 .. 49 }, 'GET: base and all 50 members, none lost');
    like $r->{body}, qr/\A\{"status":"success","data":\{"key":"obj","value":\{"base":0,"m\d+":/,
        'base keeps its place, the members follow it';
};

subtest '20 PUTs growing 20 keys against quota_bytes 2000' => sub {
    my $u = $s->new_user('r_bytes');
    my %auth = (Authorization => "Bearer $u->{token}");
    my @keys = map { sprintf 'g%02d', $_ } 0 .. 19;
    stored_ok(post_kv($s, $u, $_, 'x'), $_, "setup: POST $_ (6 bytes)") for @keys;
    usage_ok($s, $u, 20, 120, 'setup: usage 20 keys, 120 bytes', %Q);
    my $long = 'y' x 198;
    my @r = race('PUT 20 growing values', 20, sub {
        (PUT => "/api/data/$keys[$_[0]]", op => 'update', key => $keys[$_[0]], val => $long,
            headers => \%auth, body => qq({"value":"$long"}))
    });
    # Each PUT adds 197 bytes: 120 + 9 × 197 = 1893 fits, a tenth would make 2090.
    is_deeply KVLoad::statuses(@r), { 200 => 9, '507 QUOTA_EXCEEDED' => 11 },
        'exactly the 9 that fit answered 200, the other 11 507 QUOTA_EXCEEDED';
    KVLoad::envelopes_ok('PUT 20 growing values', @r);
    my $sum = table_bytes($u);
    ok $sum <= 2000, "the table's sum ($sum) is within the quota";
    is $sum, 1893, 'and is 120 + 9 × 197';
    my %won = map { $_->{key} => 1 } grep { $_->{status} == 200 } @r;
    my %db = map { $_->[0] => $_->[1] } @{ $s->sql("SELECT k, v FROM data WHERE user_id = $u->{user_id}") };
    is_deeply \%db, { map { $_ => $won{$_} ? qq("$long") : '"x"' } @keys },
        'the keys that got 200 hold the long value, the others still "x"';
    usage_ok($s, $u, 20, 1893, 'usage: 20 keys, 1893 bytes', %Q);
};

diag('races: ' . join '; ', @spreads);
$s->stop;
done_testing;
