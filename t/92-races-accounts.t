# Races of the account routes (issue 14), fired as t/92-races.t fires
# them: every client has sent all of its request but the last byte and
# waits on a barrier, then all send that byte at once.
#   - 8 refreshes of one refresh token: exactly one 200, seven 401
#     INVALID_GRANT (the token is consumed by one conditional statement).
#     Whether the winner's new tokens survive is not asserted: a loser
#     that saw the token consumed counts as a replay and ends the session
#     (decisions).
#   - DELETE /api/users/me racing 32 writes (POST and PUT) of the same
#     user: the deletion answers 200, each write succeeds or gets
#     INVALID_TOKEN (a PUT also KEY_NOT_FOUND), never a 5xx; afterwards no
#     row of any table holds the user's id, tokens or session ids, and
#     the username is free.
#   - PUT /api/users/me/password racing logins with the old and the new
#     password: the outcome is one a serial order could give.  A login
#     with the old password that got 200 must not leave a live session
#     (it either came before the change, which ended it, or it should
#     have failed); one with the new password that got 200 came after:
#     its session lives.  Afterwards the old password fails, the new one
#     works, the session that changed it lives.
use strict;
use warnings;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest;
use KVLoad;
use KVAccount qw(:all);

# The logins with a password that is wrong at that moment are failures
# of the lock-out (five lock the username): this stack allows many.
my $s = KVTest->start(workers => 4, login_max_failures => 1000);
my $J = JSON::PP->new->utf8;
my @spreads;

sub race { my ($name, $clients, $req) = @_; KVLoad::race($s, $name, $clients, $req, \@spreads) }
sub statuses { KVLoad::statuses(@_) }
sub envelopes_ok { KVLoad::envelopes_ok(@_) }

sub data_of { my $j = eval { $J->decode($_[0]{body} // '') }; ref $j eq 'HASH' && ref $j->{data} eq 'HASH' ? $j->{data} : {} }

sub json_body {
    my ($u) = @_;
    return $J->encode({ username => $u->{username}, password => $u->{password} });
}

# --- 8 refreshes of one token ------------------------------------------

for my $round (1 .. 4) {
    my $u = $s->new_user("a92r$round");
    my $t = login_ok($s, $u, "round $round: setup: a session");
    my $body = $J->encode({ grant_type => 'refresh_token', refresh_token => $t->{refresh} // 'missing' });
    my @r = race("round $round: 8 refreshes of one token", 8, sub {
        (POST => '/api/token', op => 'refresh', body => $body)
    });
    is_deeply(statuses(@r), { 200 => 1, '401 INVALID_GRANT' => 7 },
        "round $round: one 200, seven 401 INVALID_GRANT") or diag explain statuses(@r);
    envelopes_ok("round $round", @r);
    my ($won) = grep { $_->{status} == 200 } @r;
    my $d = $won ? data_of($won) : {};
    is($d->{session_id}, $t->{session} // 'missing', "round $round: the winner's answer carries the session's id");
    like($d->{refresh_token} // '', qr/\A$B64{43}\z/, "round $round: and a new refresh token");
    isnt($d->{refresh_token} // '', $t->{refresh}, "round $round: not the consumed one");
    refresh_dead($s, $t->{refresh}, "round $round: the raced token is consumed");
}

# --- Account deletion racing 32 writes ----------------------------------

for my $round (1 .. 3) {
    my $u = $s->new_user("a92d$round");
    my $t = login_ok($s, $u, "round $round: setup: a second session");
    my %auth = (Authorization => "Bearer $u->{token}");
    for my $k (0 .. 15) {
        my $r = $s->request(POST => '/api/data', { headers => \%auth, json => { key => "p$k", value => 0 } });
        is($r->{status}, 201, "round $round: setup: key p$k") or diag $r->{body};
    }
    my $pw = $J->encode({ password => $u->{password} });
    my @r = race("round $round: DELETE /api/users/me and 32 writes", 33, sub {
        my ($i) = @_;
        return (DELETE => '/api/users/me', op => 'delete-user', headers => \%auth, body => $pw) if $i == 0;
        return (POST => '/api/data', op => 'create', key => "n$i", headers => \%auth,
            body => qq({"key":"n$i","value":$i})) if $i % 2;
        return (PUT => '/api/data/p' . ($i % 16), op => 'update', key => 'p' . ($i % 16), headers => \%auth,
            body => qq({"value":$i}));
    });
    is("$r[0]{status} " . ($r[0]{code} // ''), '200 ', "round $round: the deletion answers 200")
        or diag KVLoad::fmt_record($r[0]);
    my %ok = (create => { 201 => 1, '401 INVALID_TOKEN' => 1 },
        update => { 200 => 1, '401 INVALID_TOKEN' => 1, '404 KEY_NOT_FOUND' => 1 });
    my @odd = grep { !$ok{ $_->{op} }{ $_->{status} . ($_->{code} ? " $_->{code}" : '') } } @r[1 .. $#r];
    is(scalar @odd, 0, "round $round: every write succeeded or got INVALID_TOKEN (a PUT also KEY_NOT_FOUND)")
        or diag join "\n", map { KVLoad::fmt_record($_) } @odd;
    envelopes_ok("round $round", @r);
    my $done = grep { $_->{status} =~ /^20[01]$/ } @r[1 .. $#r];
    note("round $round: $done of 32 writes were answered 2xx before the deletion won");
    is_deeply(trace_rows($s, user_id => $u->{user_id}, strings => [ $u->{token}, @$t{qw(access refresh session)} ]),
        [], "round $round: no row of any table holds the user's id, tokens or session ids");
    is($s->register(username => $u->{username}, email => $u->{email}, password => $u->{password},
        full_name => 'Again')->{status}, 201, "round $round: the username and email are free");
}

# --- Password change racing logins --------------------------------------

for my $round (1 .. 3) {
    my $u = $s->new_user("a92p$round");
    my $cur = login_ok($s, $u, "round $round: setup: the session that changes the password");
    my $old = { %$u };
    my $new = { %$u, password => "a new password $round" };
    my $chg = $J->encode({ current_password => $u->{password}, new_password => $new->{password} });
    my @r = race("round $round: PUT password and 15 logins", 16, sub {
        my ($i) = @_;
        return (PUT => '/api/users/me/password', op => 'change', headers => { Authorization => "Bearer $cur->{access}" },
            body => $chg) if $i == 0;
        return (POST => '/api/token', op => $i % 2 ? 'old' : 'new', body => json_body($i % 2 ? $old : $new));
    });
    is("$r[0]{status} " . ($r[0]{code} // ''), '200 ', "round $round: the change answers 200")
        or diag KVLoad::fmt_record($r[0]);
    my @odd = grep { $_->{status} != 200 && "$_->{status} " . ($_->{code} // '') ne '401 INVALID_CREDENTIALS' } @r[1 .. $#r];
    is(scalar @odd, 0, "round $round: each login answered 200 or 401 INVALID_CREDENTIALS")
        or diag join "\n", map { KVLoad::fmt_record($_) } @odd;
    envelopes_ok("round $round", @r);
    my @won_old = map { data_of($_) } grep { $_->{op} eq 'old' && $_->{status} == 200 } @r;
    my @won_new = map { data_of($_) } grep { $_->{op} eq 'new' && $_->{status} == 200 } @r;
    note(sprintf 'round %d: %d logins with the old password and %d with the new one got 200',
        $round, scalar @won_old, scalar @won_new);
    token_dead($s, $_->{access_token}, "round $round: a session opened with the old password does not outlive the change")
        for @won_old;
    refresh_dead($s, $_->{refresh_token}, "round $round: nor does its refresh token") for @won_old;
    token_works($s, $_->{access_token}, "round $round: a session opened with the new password lives") for @won_new;
    $s->error_is(login($s, $old), 'INVALID_CREDENTIALS', "round $round: afterwards the old password fails");
    login_ok($s, $new, "round $round: the new one works");
    token_works($s, $cur->{access}, "round $round: the session that changed it lives");
}

diag('races: ' . join '; ', @spreads);
done_testing;
