# Sessions and refresh tokens on POST /api/token (API.md "Accounts and
# sessions", issue 14 and its decisions): the password grant's new
# members and their formats, refresh tokens kept only as SHA-256, the
# refresh grant (rotation: a new access and refresh token, the same
# session; earlier access tokens stay valid), INVALID_GRANT for every bad
# refresh_token (malformed, unknown, revoked, expired, consumed),
# UNSUPPORTED_GRANT_TYPE and where it is checked, reuse detection (a
# consumed token ends its whole session), DELETE /api/token ending the
# whole session, and ACCOUNT_DISABLED.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is);
use KVAccount qw(:all);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $s = KVTest->start;

# A value only this user can read back, so a token tells whose it is.
sub whoami_ok {
    my ($st, $tok, $u, $name) = @_;
    my $r = $st->request(GET => '/api/data/whoami', { headers => $st->auth($tok) });
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        json_is($r, { status => 'success', data => { key => 'whoami', value => $u->{username} } },
            "whole body: $u->{username}'s value");
    };
}

sub probe_user {
    my ($st, $prefix) = @_;
    my $u = $st->new_user($prefix);
    my $r = $st->request(POST => '/api/data',
        { headers => $st->auth($u->{token}), json => { key => 'whoami', value => $u->{username} } });
    is $r->{status}, 201, "setup: $prefix stores whoami" or diag $r->{body};
    return $u;
}

subtest 'password grant: the new members' => sub {
    my $u = probe_user($s, 'r21pw');
    my $t1 = login_ok($s, $u, 'login: whole body with refresh_token, refresh_expires_in, session_id');
    my $t2 = login_ok($s, $u, 'grant_type "password"', extra => { grant_type => 'password' });
    my $t3 = login_ok($s, $u, 'grant_type null is the password grant', extra => { grant_type => undef });
    my $t4 = login_ok($s, $u, 'unknown members ignored', extra => { scope => 'all', client_id => 'x' });
    my @t = ($t1, $t2, $t3, $t4);
    is scalar(keys %{ { map { ($_->{session} // 'undef') => 1 } @t } }), 4, 'four logins, four sessions';
    is scalar(keys %{ { map { ($_->{refresh} // 'undef') => 1 } @t } }), 4, 'four refresh tokens, all different';
    is scalar(keys %{ { map { ($_->{access} // 'undef') => 1 } @t } }), 4, 'four access tokens, all different';
    whoami_ok($s, $_->{access}, $u, 'each access token is the user\'s') for @t;
    token_dead($s, $t1->{refresh}, 'a refresh token is no access token');
    grant_error($s, refresh($s, $t1->{access}), 'an access token is no refresh token');
    token_ok(refresh($s, $t1->{refresh}), 'and the refresh token of the first login still rotates',
        session => $t1->{session});
};

subtest 'tokens are kept only as SHA-256' => sub {
    my $u = $s->new_user('r21hash');
    my $t = login_ok($s, $u, 'login');
    my $n = token_ok(refresh($s, $t->{refresh}), 'refresh', session => $t->{session});
    my $cols = $s->sql("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
        . " WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE REGEXP 'char|binary|text|blob'");
    ok @$cols >= 5, scalar(@$cols) . ' text and binary columns to search';
    for my $tok ([ 'refresh token', $n->{refresh} ], [ 'access token', $n->{access} ]) {
        my ($what, $v) = @$tok;
        unless (defined $v) {
            fail "no $what to look for";
            next;
        }
        my ($plain, $hashed) = (0, 0);
        for my $c (@$cols) {
            my ($tb, $col) = @$c;
            my $row = $s->sql("SELECT SUM(HEX(`$col`) = HEX('$v')),"
                . " SUM(HEX(`$col`) IN (UPPER(SHA2('$v', 256)), HEX(LOWER(SHA2('$v', 256))), HEX(UPPER(SHA2('$v', 256)))))"
                . " FROM `$tb`")->[0];
            $plain += $row->[0] // 0;
            $hashed += $row->[1] // 0;
        }
        is $plain, 0, "the $what is in no column as it was sent";
        ok $hashed >= 1, "its SHA-256 is in the database ($hashed rows)";
    }
};

subtest 'the refresh grant rotates' => sub {
    my $u = probe_user($s, 'r21rot');
    my $t1 = login_ok($s, $u, 'login');
    my $t2 = token_ok(refresh($s, $t1->{refresh}), 'refresh 1: a new pair, the same session',
        session => $t1->{session});
    isnt $t2->{access}, $t1->{access}, 'a new access token';
    isnt $t2->{refresh}, $t1->{refresh}, 'a new refresh token';
    whoami_ok($s, $t2->{access}, $u, 'the new access token is the user\'s');
    whoami_ok($s, $t1->{access}, $u, 'the access token of the login stays valid (rotation is no revocation)');
    my $t3 = token_ok(refresh($s, $t2->{refresh}), 'refresh 2: again the same session, the full lifetimes',
        session => $t1->{session});
    my $t4 = token_ok(refresh($s, $t3->{refresh}, extra => { username => 'nobody', password => 'wrong password' }),
        'refresh 3: username and password are ignored', session => $t1->{session});
    my $r = $s->request(POST => '/api/token', { headers => { Authorization => 'Bearer garbage' },
        json => { grant_type => 'refresh_token', refresh_token => $t4->{refresh} } });
    my $t5 = token_ok($r, 'refresh 4: no auth needed, a bad Authorization header is ignored',
        session => $t1->{session});
    $r = $s->request(POST => '/api/token/', { json => { grant_type => 'refresh_token', refresh_token => $t5->{refresh} } });
    my $t6 = token_ok($r, 'refresh 5 on /api/token/ (trailing slash)', session => $t1->{session});
    my @all = ($t1, $t2, $t3, $t4, $t5, $t6);
    is scalar(keys %{ { map { ($_->{access} // 'undef') => 1 } @all } }), 6, 'six access tokens, all different';
    is scalar(keys %{ { map { ($_->{refresh} // 'undef') => 1 } @all } }), 6, 'six refresh tokens, all different';
    whoami_ok($s, $_->{access}, $u, 'every access token of the session works') for @all;

    # Data written with one token of the session is read with another.
    $r = $s->request(POST => '/api/data', { headers => $s->auth($t6->{access}), json => { key => 'rot', value => [1] } });
    is $r->{status}, 201, 'the newest token writes' or diag $r->{body};
    $r = $s->request(GET => '/api/data/rot', { headers => $s->auth($t1->{access}) });
    json_is($r, { status => 'success', data => { key => 'rot', value => [1] } }, 'the oldest reads it');
};

subtest 'INVALID_GRANT: malformed, unknown and revoked refresh tokens' => sub {
    my $u = probe_user($s, 'r21bad');
    my $t = login_ok($s, $u, 'setup: a live session');
    my $rt = $t->{refresh} // 'A' x 43;
    my $other = substr($rt, 0, 42) . (substr($rt, 42) eq 'A' ? 'B' : 'A');
    my @cases = (
        [ 'refresh_token missing',            { grant_type => 'refresh_token' } ],
        [ 'refresh_token null',               { grant_type => 'refresh_token', refresh_token => undef } ],
        [ 'refresh_token 5',                  { grant_type => 'refresh_token', refresh_token => 5 } ],
        [ 'refresh_token true',               { grant_type => 'refresh_token', refresh_token => JSON::PP::true } ],
        [ 'refresh_token an array',           { grant_type => 'refresh_token', refresh_token => [$rt] } ],
        [ 'refresh_token an object',          { grant_type => 'refresh_token', refresh_token => { t => $rt } } ],
        [ 'refresh_token ""',                 { grant_type => 'refresh_token', refresh_token => '' } ],
        [ '42 characters (the real one cut)', { grant_type => 'refresh_token', refresh_token => substr($rt, 0, 42) } ],
        [ '44 characters (the real one + A)', { grant_type => 'refresh_token', refresh_token => "${rt}A" } ],
        [ 'the real one + "=" padding',       { grant_type => 'refresh_token', refresh_token => "$rt=" } ],
        [ 'the real one with a space before', { grant_type => 'refresh_token', refresh_token => " $rt" } ],
        [ '43 characters outside base64url',  { grant_type => 'refresh_token', refresh_token => '!' x 43 } ],
        [ '43 characters of base64 (+ and /)', { grant_type => 'refresh_token', refresh_token => '+/' x 21 . '+' } ],
        [ 'unknown: 43 A',                    { grant_type => 'refresh_token', refresh_token => 'A' x 43 } ],
        [ 'unknown: the last character changed', { grant_type => 'refresh_token', refresh_token => $other } ],
        [ 'the session id',                   { grant_type => 'refresh_token', refresh_token => $t->{session} } ],
        [ 'the access token',                 { grant_type => 'refresh_token', refresh_token => $t->{access} } ],
        [ 'username and password, no refresh_token (not a login)',
          { grant_type => 'refresh_token', username => $u->{username}, password => $u->{password} } ],
    );
    push @cases, [ 'the real one in base64 (+/ for -_)', { grant_type => 'refresh_token', refresh_token => $rt =~ tr{-_}{+/}r } ]
        if $rt =~ /[-_]/;
    grant_error($s, token_req($s, $_->[1]), $_->[0]) for @cases;
    grant_error($s, token_req($s, qq({"grant_type":"refresh_token","refresh_token":"${\ substr($rt, 0, 21)}\\u0000${\ substr($rt, 22)}"})),
        'a \u0000 in place of a character');
    grant_error($s, token_req($s, qq({"grant_type":"refresh_token","refresh_token":"$rt\\u0000"})),
        'the real one + \u0000');
    my $n = token_ok(refresh($s, $rt), 'none of that touched the session: the real one rotates', session => $t->{session});

    # Revoked: the session was ended by DELETE /api/token.
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($n->{access}) });
    is $r->{status}, 200, 'setup: log out' or diag $r->{body};
    refresh_dead($s, $n->{refresh}, 'revoked (logged out)');
};

subtest 'UNSUPPORTED_GRANT_TYPE' => sub {
    my $u = probe_user($s, 'r21ugt');
    my $t = login_ok($s, $u, 'setup: a session');
    my %cred = (username => $u->{username}, password => $u->{password});
    my @bad = (
        [ '"authorization_code"', 'authorization_code' ],
        [ '"client_credentials"', 'client_credentials' ],
        [ '"Password" (case)',   'Password' ],
        [ '"PASSWORD"',          'PASSWORD' ],
        [ '"Refresh_Token"',     'Refresh_Token' ],
        [ '"refresh-token"',     'refresh-token' ],
        [ '"refresh"',           'refresh' ],
        [ '"password " (space)', 'password ' ],
        [ '"" (empty)',          '' ],
        [ '0',                   0 ],
        [ '1',                   1 ],
        [ '1.5',                 1.5 ],
        [ 'true',                JSON::PP::true ],
        [ 'false',               JSON::PP::false ],
        [ '{}',                  {} ],
        [ '[]',                  [] ],
        [ '["password"]',        ['password'] ],
        [ '{"password":true}',   { password => JSON::PP::true } ],
    );
    for (@bad) {
        my ($name, $gt) = @$_;
        $s->error_is(token_req($s, { %cred, grant_type => $gt }), 'UNSUPPORTED_GRANT_TYPE',
            "grant_type $name, with the right password");
        $s->error_is(token_req($s, { grant_type => $gt, refresh_token => $t->{refresh} }), 'UNSUPPORTED_GRANT_TYPE',
            "grant_type $name, with a live refresh token");
    }
    $s->error_is(token_req($s, qq({"grant_type":"password\\u0000","username":"$u->{username}","password":"$u->{password}"})),
        'UNSUPPORTED_GRANT_TYPE', 'grant_type "password\u0000"');
    $s->error_is(token_req($s, qq({"grant_type":"refresh_token\\u0000","refresh_token":"$t->{refresh}"})),
        'UNSUPPORTED_GRANT_TYPE', 'grant_type "refresh_token\u0000"');

    # Checked right after the body parses, before any other member.
    $s->error_is(token_req($s, { grant_type => 'x' }), 'UNSUPPORTED_GRANT_TYPE',
        'before MISSING_FIELDS (no username, no password)');
    $s->error_is(token_req($s, { grant_type => 'x', username => 'no_such_user_21', password => 'x' }),
        'UNSUPPORTED_GRANT_TYPE', 'before INVALID_CREDENTIALS');
    $s->error_is(token_req($s, { grant_type => 5, refresh_token => 5 }), 'UNSUPPORTED_GRANT_TYPE',
        'before INVALID_GRANT');
    $s->error_is(token_req($s, '{"grant_type":"x","grant_type":"password"}'), 'INVALID_JSON',
        'after INVALID_JSON (duplicate grant_type)');
    $s->error_is(token_req($s, '["grant_type","x"]'), 'INVALID_JSON', 'after INVALID_JSON (an array)');
    $s->error_is($s->request(POST => '/api/token', { headers => { 'Content-Type' => 'text/plain' },
        body => '{"grant_type":"x"}' }), 'UNSUPPORTED_MEDIA_TYPE', 'after UNSUPPORTED_MEDIA_TYPE');
    $s->error_is(token_req($s, { grant_type => undef }), 'MISSING_FIELDS', 'grant_type null: the password grant\'s MISSING_FIELDS');
    $s->error_is(token_req($s, { grant_type => 'password', username => $u->{username} }), 'MISSING_FIELDS',
        'grant_type "password": MISSING_FIELDS');
    $s->error_is(token_req($s, { grant_type => 'password', refresh_token => $t->{refresh} }), 'MISSING_FIELDS',
        'grant_type "password" with a refresh_token: still the password grant');
    token_ok(refresh($s, $t->{refresh}), 'the refresh token was never used by those: it rotates',
        session => $t->{session});
};

subtest 'reuse of a consumed refresh token ends the whole session' => sub {
    my $u = probe_user($s, 'r21reuse');
    my $t1 = login_ok($s, $u, 'login');
    my $o = login_ok($s, $u, 'another session of the same user');
    my $t2 = token_ok(refresh($s, $t1->{refresh}), 'refresh 1', session => $t1->{session});
    my $t3 = token_ok(refresh($s, $t2->{refresh}), 'refresh 2', session => $t1->{session});
    grant_error($s, refresh($s, $t1->{refresh}), 'the first refresh token again: INVALID_GRANT');
    token_dead($s, $t1->{access}, 'the access token of the login is dead');
    token_dead($s, $t2->{access}, 'the access token of refresh 1 is dead');
    token_dead($s, $t3->{access}, 'the newest access token is dead');
    refresh_dead($s, $t3->{refresh}, 'the newest refresh token is dead');
    refresh_dead($s, $t2->{refresh}, 'the middle one too');
    whoami_ok($s, $o->{access}, $u, 'the other session is untouched');
    token_ok(refresh($s, $o->{refresh}), 'and still rotates', session => $o->{session});

    my $a1 = login_ok($s, $u, 'a new session');
    my $a2 = token_ok(refresh($s, $a1->{refresh}), 'refreshed once', session => $a1->{session});
    grant_error($s, refresh($s, $a1->{refresh}), 'its consumed token at once: INVALID_GRANT');
    token_dead($s, $a2->{access}, 'the token just minted is dead');
    refresh_dead($s, $a2->{refresh}, 'and the refresh token just minted');
    token_dead($s, $a1->{access}, 'the login\'s access token is dead');
    my $again = login_ok($s, $u, 'the victim logs in again');
    whoami_ok($s, $again->{access}, $u, 'and works');
};

subtest 'DELETE /api/token ends the whole session' => sub {
    my $u = probe_user($s, 'r21out');
    my $t1 = login_ok($s, $u, 'login');
    my $o = login_ok($s, $u, 'another session');
    my $t2 = token_ok(refresh($s, $t1->{refresh}), 'refresh', session => $t1->{session});
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($t1->{access}) });
    subtest 'DELETE /api/token with the login\'s (older) access token' => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, { status => 'success', message => 'Access token revoked.' }, 'whole body');
    };
    token_dead($s, $t1->{access}, 'the presented token is dead');
    token_dead($s, $t2->{access}, 'the newer access token of the session too');
    refresh_dead($s, $t2->{refresh}, 'the session\'s refresh token is dead');
    refresh_dead($s, $t1->{refresh}, 'and its consumed one');
    $s->error_is($s->request(DELETE => '/api/token', { headers => $s->auth($t2->{access}) }), 'INVALID_TOKEN',
        'logging out again with the other token: INVALID_TOKEN');
    whoami_ok($s, $o->{access}, $u, 'the other session still works');
    whoami_ok($s, $u->{token}, $u, 'and the one of registration');
    token_ok(refresh($s, $o->{refresh}), 'and rotates', session => $o->{session});
};

subtest 'ACCOUNT_DISABLED' => sub {
    my $u = probe_user($s, 'r21dis');
    my $ended = login_ok($s, $u, 'a session that is ended before the account is disabled');
    my $kept = login_ok($s, $u, 'a session that survives (kvapi-admin would end it)');
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($ended->{access}) });
    is $r->{status}, 200, 'setup: end the first session' or diag $r->{body};
    # Until kvapi-admin exists (decisions): SQL, after ending the sessions.
    ok eval { $s->sql("UPDATE users SET disabled_at = UTC_TIMESTAMP(6) WHERE username = '$u->{username}'"); 1 },
        'setup: users.disabled_at set' or diag $@;
    $s->error_is(login($s, $u), 'ACCOUNT_DISABLED', 'password grant, right password: 403 ACCOUNT_DISABLED');
    $s->error_is(login($s, $u, username => uc $u->{username}), 'ACCOUNT_DISABLED', 'the username in upper case');
    $s->error_is(login($s, $u, password => 'wrong password 21'), 'INVALID_CREDENTIALS',
        'wrong password: INVALID_CREDENTIALS (nothing told without the password)');
    $s->error_is(login($s, $u, password => ''), 'MISSING_FIELDS', 'no password: MISSING_FIELDS');
    $s->error_is(token_req($s, { grant_type => 'x', username => $u->{username}, password => $u->{password} }),
        'UNSUPPORTED_GRANT_TYPE', 'an unknown grant type: UNSUPPORTED_GRANT_TYPE');
    refresh_dead($s, $ended->{refresh}, 'refresh grant of the ended session: INVALID_GRANT');
    $s->error_is(refresh($s, $kept->{refresh}), 'ACCOUNT_DISABLED',
        'refresh grant of a session that survived: 403 ACCOUNT_DISABLED');

    ok eval { $s->sql("UPDATE users SET disabled_at = NULL WHERE username = '$u->{username}'"); 1 },
        'setup: disabled_at NULL again' or diag $@;
    my $t = login_ok($s, $u, 'enabled again: the password grant works');
    whoami_ok($s, $t->{access}, $u, 'and its token is the user\'s');
};

subtest 'expiry after refresh_lifetime' => sub {
    my $s2 = KVTest->start(refresh_lifetime => 2);
    my $u = $s2->new_user('r21exp');
    my $t = login_ok($s2, $u, 'refresh_expires_in is the configured lifetime', refresh_lifetime => 2);
    my $n = token_ok(refresh($s2, $t->{refresh}), 'a refresh: the full lifetime again',
        refresh_lifetime => 2, session => $t->{session});
    # Polled with sacrificial sessions opened after this one (no fixed
    # sleep); the rotation above shows that a live refresh token rotates.
    my ($tries, $first) = wait_refresh_expired($s2, $u, 30, 20);
    ok $tries, 'refresh tokens expire on the server (seen after ' . ($tries // 'no') . ' tries)';
    note 'the first probe answered ' . ($first // 'nothing');
    refresh_dead($s2, $n->{refresh}, 'the expired refresh token: INVALID_GRANT');
    my $again = login_ok($s2, $u, 'a new login', refresh_lifetime => 2);
    token_ok(refresh($s2, $again->{refresh}), 'rotates', refresh_lifetime => 2, session => $again->{session});
    $s2->stop;
};

done_testing;
