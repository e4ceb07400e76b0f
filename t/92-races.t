# Races: 32 clients, each with all of its request but the last byte
# already sent, wait on a barrier (a pipe the parent closes) and then send
# that byte at the same moment.  Uniqueness must hold by the database's constraints,
# not by luck: one 201 and 31 409s for the same new key, username or
# email; 32 PUTs of one key all succeed and leave one of the written
# values with its own ETag; of 32 deletes one wins; of 32 If-Match PUTs
# holding the same ETag one wins and the others get 412.
# Then expired tokens: with token_lifetime and token_purge_interval of 1 s
# the workers delete expired tokens after answering requests.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest;
use KVLoad;

my $N = 32;
my $s = KVTest->start(workers => 4);
my $u = $s->new_user('f92');
my %auth = (Authorization => "Bearer $u->{token}");
my @spreads;

sub race { my ($name, $req) = @_; KVLoad::race($s, $name, $N, $req, \@spreads) }
sub statuses { KVLoad::statuses(@_) }
sub envelopes_ok { KVLoad::envelopes_ok(@_) }

# The same new key.
my @r = race('POST same key', sub {
    (POST => '/api/data', op => 'create', key => 'race', val => "v$_[0]",
        headers => \%auth, body => qq({"key":"race","value":"v$_[0]"}))
});
is_deeply(statuses(@r), {201 => 1, '409 KEY_EXISTS' => $N - 1},
    'POST same key: one 201, the rest 409 KEY_EXISTS');
envelopes_ok('POST same key', @r);
my ($won) = grep { $_->{status} == 201 } @r;
is_deeply($s->sql("SELECT v FROM data WHERE user_id = $u->{user_id} AND k = 'race'"),
    [ [ qq("$won->{val}") ] ], 'the stored value is the winner\'s');

# The same username, and the same email.
my $name = 'f92same_' . int rand 1e6;
@r = race('register same username', sub {
    (POST => '/api/register', op => 'register',
        body => qq({"username":"$name","email":"$name$_[0]\@example.com","password":"correct horse 1","full_name":"Race $_[0]"}))
});
is_deeply(statuses(@r), {201 => 1, '409 USERNAME_EXISTS' => $N - 1},
    'register same username: one 201, the rest 409 USERNAME_EXISTS');
envelopes_ok('register same username', @r);
is($s->sql("SELECT COUNT(*) FROM users WHERE username = '$name'")->[0][0], 1,
    'one such user in the database');

@r = race('register same email', sub {
    (POST => '/api/register', op => 'register',
        body => qq({"username":"${name}_$_[0]","email":"Same.$name\@example.com","password":"correct horse 1","full_name":"Race $_[0]"}))
});
is_deeply(statuses(@r), {201 => 1, '409 EMAIL_EXISTS' => $N - 1},
    'register same email: one 201, the rest 409 EMAIL_EXISTS');
envelopes_ok('register same email', @r);

# 32 PUTs of one key: all succeed, the last committed stays, with its ETag.
@r = race('PUT one key', sub {
    (PUT => '/api/data/race', op => 'update', key => 'race', val => "p$_[0]",
        headers => \%auth, body => qq({"value":"p$_[0]"}))
});
is_deeply(statuses(@r), {200 => $N}, 'PUT one key: every PUT answered 200');
my $res = $s->request(GET => '/api/data/race', {headers => \%auth});
my $final = $res->{json}{data}{value} // '';
my %written = map { $_->{val} => 1 } @r;
ok($written{$final}, "the final value ($final) is one of those written");
my $etag = $res->{headers}{etag} // '';
my $row = $s->sql("SELECT v, LPAD(HEX(version), 16, '0') FROM data WHERE user_id = $u->{user_id} AND k = 'race'")->[0];
is(lc qq("$row->[1]"), lc $etag, 'the ETag is the stored row version');

# If-Match with the same ETag: one writer wins.
@r = race('PUT If-Match', sub {
    (PUT => '/api/data/race', op => 'update', key => 'race', val => "m$_[0]",
        headers => {%auth, 'If-Match' => $etag}, body => qq({"value":"m$_[0]"}))
});
is_deeply(statuses(@r), {200 => 1, '412 PRECONDITION_FAILED' => $N - 1},
    'PUT If-Match: one 200, the rest 412 PRECONDITION_FAILED');
envelopes_ok('PUT If-Match', @r);
($won) = grep { $_->{status} == 200 } @r;
$res = $s->request(GET => '/api/data/race', {headers => \%auth});
is($res->{json}{data}{value}, $won && $won->{val}, 'the winner\'s value is stored');

# 32 deletes: one 200, the rest 404.
@r = race('DELETE one key', sub {
    (DELETE => '/api/data/race', op => 'delete', key => 'race', headers => \%auth)
});
is_deeply(statuses(@r), {200 => 1, '404 KEY_NOT_FOUND' => $N - 1},
    'DELETE one key: one 200, the rest 404 KEY_NOT_FOUND');
is($s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id} AND k = 'race'")->[0][0],
    0, 'the key is gone');

# Expired tokens are purged by the workers, after a request.
$s->restart_app(token_lifetime => 1, token_purge_interval => 1);
my $v = $s->new_user('f92p');
my @toks;
for (1 .. 20) {
    my $t = $s->request(POST => '/api/token',
        {json => {username => $v->{username}, password => $v->{password}}});
    push @toks, $t->{json}{data}{access_token} if $t->{status} == 200;
}
is(scalar @toks, 20, '20 tokens of 1 s');
my $count = sub {
    $s->sql("SELECT COUNT(*) FROM tokens WHERE user_id = $v->{user_id}")->[0][0];
};
my $before = $count->();
ok($before >= 21, "tokens table holds them ($before)");
my $expired;
KVTest::poll_until(10, sub {
    $expired = $s->request(GET => '/api/data/x', {headers => $s->auth($toks[-1])});
    $expired->{status} == 401 });
$s->error_is($expired, 'INVALID_TOKEN', 'an expired token is refused');
my ($after, $t0) = ($before, time);
while (time - $t0 < 10) {
    # Requests to both pools: any worker purges after its interval.
    $s->request(GET => '/api/health') for 1 .. 8;
    $s->request(POST => '/api/token', {json => {username => 'nobody_f92', password => 'x'}});
    $after = $count->();
    last if $after == 0;
    sleep 0.3;
}
is($after, 0, sprintf 'expired tokens purged (%d -> %d rows in %.1fs)',
    $before, $after, time - $t0);
like($s->log_text('kvapi'), qr/info: purged \d+ expired tokens/, 'the purge is logged');

diag("races ($N clients): " . join '; ', @spreads);
done_testing;
