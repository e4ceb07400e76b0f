# The session routes (API.md "Accounts and sessions", issue 14 and its
# decisions): GET /api/sessions lists exactly the user's live sessions,
# newest first, with the current one flagged, the User-Agent of the
# login (at most 255 bytes cut at a character boundary; empty, invalid
# UTF-8 or control characters: null), refreshed_at null until a refresh,
# expires_at sliding with each refresh; ended and expired sessions are
# not listed.  DELETE /api/sessions/{id} revokes one (the current one
# too; anything else is SESSION_NOT_FOUND), DELETE /api/sessions every
# other one, answering how many.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Time::HiRes qw(time sleep);
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag show);
use KVAccount qw(:all);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $s = KVTest->start;


# Wait for the next second of the clock, so that the next session is
# created in a second of its own (created_at has whole seconds).
sub next_second {
    my $now = int time;
    sleep 0.02 while int(time) == $now;
}

# Log $u in (ua => as token_req) and note when: {access, refresh,
# session, t0, t1, ua (what the list must show)}.
sub open_session {
    my ($st, $u, $name, %o) = @_;
    my $t0 = time;
    my $t = login_ok($st, $u, $name, exists $o{ua} ? (ua => $o{ua}) : (), %{ $o{ok} // {} });
    @$t{qw(t0 t1)} = ($t0, time);
    $t->{ua} = exists $o{show} ? $o{show} : exists $o{ua} ? $o{ua} : 'kvtest';
    return $t;
}

sub rotate {
    my ($st, $t, $name, %o) = @_;
    my $t0 = time;
    my $n = token_ok(refresh($st, $t->{refresh}, %o), $name, session => $t->{session});
    @$t{qw(access refresh rt0 rt1)} = ($n->{access}, $n->{refresh}, $t0, time);
    return $t;
}

# One test: $r lists exactly the sessions @$exp (open_session's hashes;
# current => the one of the presented token), newest first (created_at,
# whole seconds: ties in any order), each item whole: created_at within
# the login, refreshed_at null or within the last refresh, expires_at
# that plus the refresh lifetime.
sub list_ok {
    my ($r, $exp, $current, $name, %o) = @_;
    my $life = $o{lifetime} // $REFRESH_LIFETIME;
    my $items = session_items($r);
    my %by = map { (ref $_ eq 'HASH' ? $_->{session_id} // '' : '') => $_ } @$items;
    my %pos;
    @pos{ map { ref $_ eq 'HASH' ? $_->{session_id} // '' : '' } @$items } = 0 .. $#$items;
    my $str = sub { defined $_[0] && !ref $_[0] ? "$_[0]" : 'missing' };
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store';
        my @want;
        for my $e (@$exp) {
            my $id = $e->{session} // 'missing';
            my $it = ref $by{$id} eq 'HASH' ? $by{$id} : {};
            my $c = rfc3339($it->{created_at});
            ok defined $c && $c >= int($e->{t0}) - 1 && $c <= $e->{t1} + 1,
                "$id: created_at " . show($it->{created_at}, 50) . ' is when it logged in';
            my $base = $c;
            if ($e->{rt0}) {
                $base = rfc3339($it->{refreshed_at});
                ok defined $base && $base >= int($e->{rt0}) - 1 && $base <= $e->{rt1} + 1,
                    "$id: refreshed_at " . show($it->{refreshed_at}, 50) . ' is when it was last refreshed';
            }
            my $x = rfc3339($it->{expires_at});
            ok defined $x && defined $base && $x - $base >= $life && $x - $base <= $life + 1,
                "$id: expires_at " . show($it->{expires_at}, 50) . ' is ' . ($e->{rt0} ? 'refreshed_at' : 'created_at')
                . " + $life s";
            push @want, {
                session_id   => $id,
                created_at   => $str->($it->{created_at}),
                refreshed_at => $e->{rt0} ? $str->($it->{refreshed_at}) : undef,
                expires_at   => $str->($it->{expires_at}),
                user_agent   => $e->{ua},
                current      => defined $current && $id eq ($current->{session} // '') ? JSON::PP::true : JSON::PP::false,
            };
        }
        @want = sort { $b->{created_at} cmp $a->{created_at}
            || ($pos{ $a->{session_id} } // 1e9) <=> ($pos{ $b->{session_id} } // 1e9) } @want;
        json_is($r, { status => 'success', data => { items => \@want } },
            'whole body: exactly these sessions, newest first');
    };
}

sub list { my ($st, $t, $path) = @_; sessions_of($st, ref $t ? $t->{access} : $t, $path) }

sub revoke {
    my ($st, $t, $id) = @_;
    return $st->request(DELETE => "/api/sessions/$id", { headers => defined $t ? $st->auth(ref $t ? $t->{access} : $t) : {} });
}

sub success_is {
    my ($r, $json, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, $json, 'whole body');
    };
}

sub allow_ok {
    my ($r, $want, $name) = @_;
    subtest $name => sub {
        $s->error_is($r, 'METHOD_NOT_ALLOWED', 'METHOD_NOT_ALLOWED');
        my %got = map { $_ => 1 } split /,\s*/, $r->{headers}{allow} // '';
        ok $got{$_}, "Allow lists $_" for @$want;
    };
}

subtest 'GET /api/sessions: every live session, newest first, the current one flagged' => sub {
    my $t0 = time;
    my $u = $s->new_user('s24list');
    my $reg = { access => $u->{token}, t0 => $t0, t1 => time, ua => 'kvtest' };
    my $first = session_items(list($s, $u->{token}));
    $reg->{session} = ref $first->[0] eq 'HASH' ? $first->[0]{session_id} : undef;
    next_second();
    my $a = open_session($s, $u, 'login A', ua => 'app-one/1.0');
    next_second();
    my $b = open_session($s, $u, 'login B', ua => 'Mozilla/5.0 (X11; Linux x86_64) Zoë ☃',
        show => 'Mozilla/5.0 (X11; Linux x86_64) Zoë ☃');
    next_second();
    my $c = open_session($s, $u, 'login C, no User-Agent', ua => undef);
    my @all = ($reg, $a, $b, $c);
    list_ok(list($s, $b), \@all, $b, 'listed with B\'s token: C, B (current), A, the registration\'s');
    list_ok(list($s, $a), \@all, $a, 'with A\'s: A is the current one');
    list_ok(list($s, $u->{token}), \@all, $reg, 'with the registration\'s token');
    list_ok(list($s, $c, '/api/sessions/'), \@all, $c, 'GET /api/sessions/ (trailing slash): the same');
    is_deeply [ map { $_->{session_id} } @{ session_items(list($s, $b)) } ],
        [ map { $_->{session} // 'missing' } $c, $b, $a, $reg ], 'in the order they were opened, newest first';

    my $v = $s->new_user('s24other');
    my $vt = open_session($s, $v, 'another user logs in');
    is scalar @{ session_items(list($s, $vt)) }, 2, 'the other user sees its own two sessions only';
    list_ok(list($s, $a), \@all, $a, 'and ours are unchanged');
};

subtest 'user_agent: as sent at login, at most 255 bytes, else null' => sub {
    my $u = $s->new_user('s24ua');
    my @cases = (
        [ 'plain ASCII',                      'curl/8.5.0',            'curl/8.5.0' ],
        [ '255 bytes',                        'a' x 255,               'a' x 255 ],
        [ '300 bytes: the first 255',         'a' x 300,               'a' x 255 ],
        [ '254 + two-byte characters: 254 (no half character)', 'a' x 254 . 'é' x 10, 'a' x 254 ],
        [ '253 + two-byte characters: 255',   'a' x 253 . 'é' x 10,    'a' x 253 . 'é' ],
        [ '70 four-byte characters: 63 of them', '😀' x 70,            '😀' x 63 ],
        [ 'non-ASCII UTF-8',                  'Zoë/1.0 (☃)',           'Zoë/1.0 (☃)' ],
        [ 'empty',                            '',                      undef ],
        [ 'absent',                           undef,                   undef ],
        [ 'invalid UTF-8: FF FE',             "\xff\xfe",              undef, 1 ],
        [ 'invalid UTF-8: a lone continuation byte', "ok\x80ok",      undef, 1 ],
        [ 'invalid UTF-8: a truncated sequence', "caf\xc3",           undef, 1 ],
        [ 'invalid UTF-8: overlong (C0 AF)',  "a\xc0\xafb",            undef, 1 ],
        [ 'invalid UTF-8: a surrogate (ED A0 80)', "a\xed\xa0\x80b",   undef, 1 ],
        [ 'invalid UTF-8 after 250 good bytes', 'a' x 250 . "\xff" . 'a' x 10, undef, 1 ],
        [ 'a control character (U+0001)',     "a\x01b",                undef ],
        [ 'DEL (U+007F)',                     "a\x7fb",                undef ],
        [ 'a tab',                            "a\tb",                  undef ],
    );
    for my $c (@cases) {
        my ($name, $ua, $want, $raw) = @$c;
        my $send = $ua;
        utf8::encode($send) if defined $send && !$raw;
        my $t = login_ok($s, $u, "login with User-Agent: $name", ua => $send);
        my ($it) = grep { ref $_ eq 'HASH' && ($_->{session_id} // '') eq ($t->{session} // 'missing') }
            @{ session_items(list($s, $t)) };
        is_deeply tag(ref $it eq 'HASH' ? $it->{user_agent} : 'no such item'), tag($want),
            "$name: user_agent " . show($want, 50);
    }
    my $t = login_ok($s, $u, 'login with User-Agent first/1.0', ua => 'first/1.0');
    rotate($s, $t, 'refreshed with another User-Agent', ua => 'second/2.0');
    my ($it) = grep { ref $_ eq 'HASH' && ($_->{session_id} // '') eq ($t->{session} // 'missing') }
        @{ session_items(list($s, $t)) };
    is_deeply tag(ref $it eq 'HASH' ? $it->{user_agent} : 'no such item'), tag('first/1.0'),
        'a refresh does not change it: the User-Agent of the login';
};

subtest 'refreshed_at: null until the first refresh; expires_at slides' => sub {
    my $t0 = time;
    my $u = $s->new_user('s24ref');
    my $other = { access => $u->{token}, t0 => $t0, t1 => time, ua => 'kvtest' };
    my $i = session_items(list($s, $u->{token}))->[0];
    $other->{session} = ref $i eq 'HASH' ? $i->{session_id} : undef;
    my $t = open_session($s, $u, 'login');
    list_ok(list($s, $t), [ $other, $t ], $t, 'new: refreshed_at null, expires_at = created_at + 30 days');
    next_second();
    rotate($s, $t, 'refresh');
    list_ok(list($s, $t), [ $other, $t ], $t, 'refreshed: refreshed_at set, expires_at = refreshed_at + 30 days');
    next_second();
    rotate($s, $t, 'refresh again');
    list_ok(list($s, $t), [ $other, $t ], $t, 'refreshed again: both move on, created_at stays');
};

subtest 'ended sessions are not listed' => sub {
    my $u = $s->new_user('s24end');
    my $keep = open_session($s, $u, 'the session that lists');
    my $out = open_session($s, $u, 'a session that logs out');
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($out->{access}) });
    is $r->{status}, 200, 'log out' or diag $r->{body};
    my $reused = open_session($s, $u, 'a session whose refresh token is replayed');
    my $old = $reused->{refresh};
    rotate($s, $reused, 'it rotates');
    refresh_dead($s, $old, 'the replay: INVALID_GRANT, the session ends');
    $r = $s->request(DELETE => '/api/token', { headers => $s->auth($u->{token}) });
    is $r->{status}, 200, 'the registration\'s session logs out too' or diag $r->{body};
    list_ok(list($s, $keep), [ $keep ], $keep, 'only the live one is listed');
};

subtest 'DELETE /api/sessions/{id}' => sub {
    my $u = $s->new_user('s24one');
    my $a = open_session($s, $u, 'session A');
    my $b = open_session($s, $u, 'session B');
    rotate($s, $b, 'B refreshed');
    my $c = open_session($s, $u, 'session C');
    my $v = $s->new_user('s24one_other');
    my $vt = open_session($s, $v, 'another user\'s session');

    ok grep({ ($_->{session_id} // '') eq ($b->{session} // 'missing') } @{ session_items(list($s, $a)) }),
        'B is listed';
    success_is(revoke($s, $a, $b->{session} // 'missing'), { status => 'success', message => 'Session revoked.' },
        'A revokes B: 200 "Session revoked." (no data)');
    token_dead($s, $b->{access}, 'B\'s access token is dead');
    refresh_dead($s, $b->{refresh}, 'B\'s refresh token too');
    token_works($s, $a->{access}, 'A still works');
    ok !grep({ ($_->{session_id} // '') eq ($b->{session} // 'missing') } @{ session_items(list($s, $a)) }),
        'B is no longer listed';
    $s->error_is(revoke($s, $a, $b->{session} // 'missing'), 'SESSION_NOT_FOUND', 'B again: SESSION_NOT_FOUND');

    my $cid = $c->{session} // 'A' x 22;
    my @bad = (
        [ 'unknown (22 A)',                  'A' x 22 ],
        [ 'another user\'s live session',    $vt->{session} // 'B' x 22 ],
        [ '"x"',                             'x' ],
        [ '21 characters (C\'s cut)',        substr($cid, 0, 21) ],
        [ '23 characters (C\'s + A)',        "${cid}A" ],
        [ '22 characters outside base64url', '!' x 22 ],
        [ 'C\'s in upper case',              uc $cid ],
        [ 'C\'s access token',               $c->{access} // 'C' x 43 ],
        [ 'C\'s refresh token',              $c->{refresh} // 'D' x 43 ],
        [ '300 characters',                  'A' x 300 ],
        [ '"1"',                             '1' ],
        [ '"0"',                             '0' ],
    );
    for my $x (@bad) {
        next if $x->[0] =~ /upper case/ && uc $cid eq $cid;
        $s->error_is(revoke($s, $a, $x->[1]), 'SESSION_NOT_FOUND', "$x->[0]: SESSION_NOT_FOUND");
    }
    token_works($s, $vt->{access}, 'the other user\'s session is untouched');
    token_works($s, $c->{access}, 'C is untouched by the spoilt ids');
    token_ok(refresh($s, $c->{refresh}), 'and C\'s refresh token still rotates', session => $c->{session});

    $s->error_is(revoke($s, undef, $cid), 'INVALID_TOKEN', 'no token: INVALID_TOKEN');
    $s->error_is(revoke($s, 'A' x 43, $cid), 'INVALID_TOKEN', 'an unknown token: INVALID_TOKEN');

    success_is(revoke($s, $a, $a->{session} // 'missing'), { status => 'success', message => 'Session revoked.' },
        'A revokes itself (the current session): 200');
    token_dead($s, $a->{access}, 'then A\'s token is dead');
    refresh_dead($s, $a->{refresh}, 'and its refresh token');
    success_is(revoke($s, $u->{token}, $c->{session} // 'missing'), { status => 'success', message => 'Session revoked.' },
        'the registration\'s session revokes C');

    for my $m (qw(GET POST PUT PATCH)) {
        allow_ok($s->request($m => '/api/sessions/' . ('A' x 22), { headers => $s->auth($u->{token}),
            $m =~ /P/ ? (json => {}) : () }), [qw(DELETE OPTIONS)], "$m /api/sessions/{id}: 405");
    }
    my $r = $s->request(OPTIONS => '/api/sessions/' . ('A' x 22), {});
    is $r->{status}, 204, 'OPTIONS /api/sessions/{id}: 204';
};

subtest 'DELETE /api/sessions: every session but the current one' => sub {
    my $u = $s->new_user('s24all');
    my $a = open_session($s, $u, 'session A (the current one)');
    my $b = open_session($s, $u, 'session B');
    my $c = open_session($s, $u, 'session C');
    my $c1 = $c->{access};
    rotate($s, $c, 'C refreshed');
    my $c2 = $c->{access};
    rotate($s, $c, 'C refreshed again');
    my $d = open_session($s, $u, 'session D, logged out before');
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($d->{access}) });
    is $r->{status}, 200, 'D logs out' or diag $r->{body};
    my $v = $s->new_user('s24all_other');
    my $vt = open_session($s, $v, 'another user\'s session');

    success_is($s->request(DELETE => '/api/sessions', { headers => $s->auth($a->{access}) }),
        { status => 'success', message => 'Other sessions revoked.', data => { revoked => 3 } },
        'DELETE /api/sessions with A: revoked 3 (the registration\'s, B, C; not the ended D)');
    token_dead($s, $_->[1], "$_->[0]: dead") for [ 'the registration\'s token', $u->{token} ],
        [ 'B\'s token', $b->{access} ], [ 'C\'s first token', $c1 ], [ 'C\'s second', $c2 ], [ 'C\'s newest', $c->{access} ];
    refresh_dead($s, $b->{refresh}, 'B\'s refresh token: dead');
    refresh_dead($s, $c->{refresh}, 'C\'s: dead');
    token_works($s, $a->{access}, 'A works');
    token_works($s, $vt->{access}, 'the other user\'s session works');
    token_works($s, $v->{token}, 'and its registration\'s');
    rotate($s, $a, 'A\'s refresh token rotates');
    list_ok(list($s, $a), [ $a ], $a, 'only A is listed');
    success_is($s->request(DELETE => '/api/sessions', { headers => $s->auth($a->{access}) }),
        { status => 'success', message => 'Other sessions revoked.', data => { revoked => 0 } }, 'again: revoked 0');

    my $e = open_session($s, $u, 'session E');
    success_is($s->request(DELETE => '/api/sessions/', { headers => $s->auth($a->{access}) }),
        { status => 'success', message => 'Other sessions revoked.', data => { revoked => 1 } },
        'DELETE /api/sessions/ (trailing slash) is the same: revoked 1');
    token_dead($s, $e->{access}, 'E is dead');
    token_works($s, $a->{access}, 'A still works');

    $s->error_is($s->request(DELETE => '/api/sessions', {}), 'INVALID_TOKEN', 'no token: INVALID_TOKEN');
    $s->error_is($s->request(GET => '/api/sessions', {}), 'INVALID_TOKEN', 'GET, no token: INVALID_TOKEN');
    $s->error_is($s->request(GET => '/api/sessions', { headers => $s->auth($a->{refresh}) }), 'INVALID_TOKEN',
        'GET with a refresh token: INVALID_TOKEN');
    for my $m (qw(POST PUT PATCH)) {
        allow_ok($s->request($m => '/api/sessions', { headers => $s->auth($a->{access}), json => {} }),
            [qw(GET DELETE OPTIONS)], "$m /api/sessions: 405");
    }
    $r = $s->request(OPTIONS => '/api/sessions', {});
    is $r->{status}, 204, 'OPTIONS /api/sessions: 204';
    token_works($s, $a->{access}, 'none of that ended A');
};

subtest 'expired sessions are not listed' => sub {
    my $s2 = KVTest->start(refresh_lifetime => 2);
    my $u = $s2->new_user('s24exp');
    my $old = open_session($s2, $u, 'a session of 2 s', ok => { refresh_lifetime => 2 });
    # Poll: each round a fresh session lists, until the old one is gone.
    my ($t0, $rounds, $fresh, $listed) = (time, 0);
    while (time - $t0 < 20) {
        $rounds++;
        my $f = login($s2, $u);
        $fresh = { access => $f->{json}{data}{access_token}, session => $f->{json}{data}{session_id} };
        $listed = session_items(list($s2, $fresh->{access}));
        last unless grep { ref $_ eq 'HASH' && ($_->{session_id} // '') eq ($old->{session} // '') } @$listed;
        sleep 0.2;
    }
    my @ids = map { ref $_ eq 'HASH' ? $_->{session_id} // '' : '' } @$listed;
    ok !grep({ $_ eq ($old->{session} // 'missing') } @ids) && time - $t0 < 20,
        "the expired session left the list (after $rounds rounds)";
    ok grep({ $_ eq ($fresh->{session} // 'missing') } @ids), 'the fresh one is listed';
    my @stale = grep { my $x = rfc3339($_->{expires_at}); !defined $x || $x < time - 1 } grep { ref $_ eq 'HASH' } @$listed;
    is scalar @stale, 0, 'no listed session has expired';
    refresh_dead($s2, $old->{refresh}, 'and its refresh token is refused: INVALID_GRANT');
    $s2->error_is(revoke($s2, $fresh->{access}, $old->{session} // 'x'), 'SESSION_NOT_FOUND',
        'DELETE of the expired session: SESSION_NOT_FOUND');
    $s2->stop;
};

done_testing;
