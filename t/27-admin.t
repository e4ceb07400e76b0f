# kvapi-admin (issue 17, man/kvapi-admin.8.in) against the real stack,
# with the stack's own config: user list (all, --prefix in any case,
# nothing), user show (the profile as GET /api/users/me, usage, the live
# sessions as GET /api/sessions shows them, disabled_at), user disable
# (403 ACCOUNT_DISABLED for the right password only, every session and
# token ended at once, said again when repeated), user enable (logins
# work again), sessions revoke, user delete (data gone, the name free),
# purge (every expired row, past 1000 of a kind, nothing live), stats;
# and the exit codes: 1 no such user, 2 usage, 3 database.
use strict;
use warnings;
use File::Temp ();
use POSIX ();
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag);
use KVAccount qw(:all);

# Workers purge nothing by themselves: purge's counts are the test's.
my $s = KVTest->start(token_purge_interval => 0);
my $ADMIN = ($ENV{KVAPI_BUILDDIR} // '.') . '/src/kvapi-admin';
my $P = "adm27_$$";

# Run kvapi-admin with the stack's config: {rc, out, err}.  %env: more
# environment.
sub admin {
    my ($args, %env) = @_;
    my ($out, $err) = map { File::Temp->new(DIR => $s->dir) } 1 .. 2;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ENV{$_} = $env{$_} for keys %env;
        open STDOUT, '>', $out->filename or POSIX::_exit(127);
        open STDERR, '>', $err->filename or POSIX::_exit(127);
        exec $ADMIN, '-c', $s->config_path, @$args or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    my %r = (rc => $rc);
    for ([ out => $out ], [ err => $err ]) {
        open my $fh, '<', $_->[1]->filename or die;
        local $/;
        $r{ $_->[0] } = <$fh> // '';
    }
    return \%r;
}

# One test: the run's exit code, stdout and stderr, exactly.
sub admin_is {
    my ($r, $rc, $out, $err, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        is $r->{rc}, $rc, "exit $rc";
        ref $out ? like($r->{out}, $out, 'stdout') : is($r->{out}, $out, 'stdout');
        ref $err ? like($r->{err}, $err, 'stderr') : is($r->{err}, $err, 'stderr');
    };
}

sub mk {
    my ($name) = @_;
    my %u = (username => $name, email => "$name\@example.com", password => 'correct horse 27',
        full_name => "Admin $name");
    my $r = $s->register(%u, age => 27, gender => 'none');
    die "register $name: $r->{status} $r->{body}\n" unless $r->{status} == 201;
    $u{user_id} = $r->{json}{data}{user_id};
    $u{t} = token_ok(login($s, \%u), "setup: $name logs in");
    return \%u;
}

my @u = map { mk("${P}_$_") } qw(carol alice bob);
my ($carol, $alice, $bob) = @u;
my $other = mk("x27_$$");

subtest 'usage: exit 2' => sub {
    my $r = admin([]);
    is $r->{rc}, 2, 'no command: exit 2';
    like $r->{err}, qr/\Ausage: kvapi-admin/, 'the usage on stderr';
    is $r->{out}, '', 'nothing on stdout';
    for my $args ([qw(user)], [qw(user show)], [qw(user frob x)], [qw(user list --prefix)],
        [qw(stats now)], [qw(sessions revoke)], [qw(user show a b)]) {
        my $r = admin($args);
        is "$r->{rc} " . ($r->{err} =~ /\Ausage: / ? 'usage' : $r->{err}), '2 usage', "@$args: exit 2 with the usage";
    }
    my $h = admin(['--help']);
    is "$h->{rc} " . ($h->{out} =~ /\Ausage: / ? 'usage' : $h->{out}), '0 usage', '--help: the usage on stdout, exit 0';
};

# A user's line of user list.
sub line_of {
    my ($u, $disabled) = @_;
    my ($c) = @{ $s->sql("SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ') FROM users WHERE id = $u->{user_id}")->[0] };
    return join("\t", $u->{user_id}, $u->{username}, $u->{email}, $c, $disabled // '-') . "\n";
}

subtest 'user list' => sub {
    my @sorted = sort { $a->{username} cmp $b->{username} } @u;
    my $mine = join '', map { line_of($_) } @sorted;
    admin_is(admin([qw(user list --prefix), $P]), 0, $mine, '', '--prefix: the three, by name');
    admin_is(admin([qw(user list --prefix), uc $P]), 0, $mine, '', 'the prefix in upper case: the same');
    admin_is(admin([qw(user list --prefix), "${P}_b"]), 0, line_of($bob), '', 'a longer prefix: one');
    admin_is(admin([qw(user list --prefix), 'nobody_has_this']), 0, '', '', 'no match: nothing, exit 0');
    # "_" is no wildcard, "%" neither.
    admin_is(admin([qw(user list --prefix), 'adm2_']), 0, '', '', 'a prefix is no LIKE pattern (_)');
    admin_is(admin([qw(user list --prefix), '%']), 0, '', '', 'nor (%)');
    my $all = admin([qw(user list)]);
    is $all->{rc}, 0, 'all users: exit 0';
    is_deeply [ sort split /^/, $all->{out} ], [ sort map { line_of($_) } @u, $other ], 'all users: every one, once';
};

# What user show must print for $u: GET /api/users/me's data without the
# quota, disabled_at, and GET /api/sessions' items without "current".
sub show_expected {
    my ($u, $tok, $disabled) = @_;
    my $me = $s->request(GET => '/api/users/me', { headers => $s->auth($tok) })->{json}{data};
    delete $me->{quota};
    my $items = session_items(sessions_of($s, $tok));
    delete $_->{current} for @$items;
    return { %$me, disabled_at => $disabled, sessions => $items };
}

sub show_is {
    my ($u, $exp, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = admin([ 'user', 'show', $u->{username} ]);
    subtest $name => sub {
        is $r->{rc}, 0, 'exit 0';
        is $r->{err}, '', 'nothing on stderr';
        json_is({ status => 200, body => $r->{out} }, $exp, 'the whole document');
    };
}

subtest 'user show' => sub {
    my $A = $s->auth($alice->{t}{access});
    for ([ k1 => { a => 1 } ], [ 'k/2' => 'two' ]) {
        my $r = $s->request(POST => '/api/data', { headers => $A, json => { key => $_->[0], value => $_->[1] } });
        is $r->{status}, 201, "setup: key $_->[0]";
    }
    my $second = token_ok(login($s, $alice, ua => 'admin-test/2'), 'setup: a second session');
    my $exp = show_expected($alice, $alice->{t}{access});
    is $exp->{usage}{keys}, 2, 'setup: the API counts two keys';
    is $exp->{usage}{bytes}, length('k1{"a":1}') + length('k/2"two"'), 'setup: and their bytes';
    is scalar @{ $exp->{sessions} }, 2, 'setup: two sessions';
    show_is($alice, $exp, 'user show: profile, usage, sessions');
    show_is({ username => uc $alice->{username} }, $exp, 'the name in upper case');
    admin_is(admin([qw(user show nobody27)]), 1, '', "kvapi-admin: no user 'nobody27'\n", 'no such user: exit 1');
    $alice->{t2} = $second;
};

subtest 'user disable' => sub {
    my $before = show_expected($alice, $alice->{t}{access});
    admin_is(admin([ 'user', 'disable', $alice->{username} ]), 0,
        "disabled $alice->{username} (user $alice->{user_id})\nended 2 sessions\n", '', 'exit 0, says what it did');
    token_dead($s, $alice->{t}{access}, 'the first session\'s access token is refused at once');
    token_dead($s, $alice->{t2}{access}, 'and the second\'s');
    grant_error($s, refresh($s, $alice->{t}{refresh}), 'its refresh token is gone');
    $s->error_is(login($s, $alice), 'ACCOUNT_DISABLED', 'a login with the right password: 403 ACCOUNT_DISABLED');
    $s->error_is(login($s, $alice, password => 'wrong password 27'), 'INVALID_CREDENTIALS',
        'with a wrong one: INVALID_CREDENTIALS, as ever');
    my ($at) = @{ $s->sql("SELECT DATE_FORMAT(disabled_at, '%Y-%m-%dT%H:%i:%sZ') FROM users WHERE id = $alice->{user_id}")->[0] };
    ok defined rfc3339($at), "users.disabled_at is set ($at)";
    show_is($alice, { %$before, disabled_at => $at, sessions => [] }, 'user show: disabled_at, no session');
    admin_is(admin([qw(user list --prefix), $alice->{username}]), 0, line_of($alice, $at), '', 'user list: disabled_at');
    is_deeply $s->sql("SELECT COUNT(*) FROM tokens WHERE user_id = $alice->{user_id}"), [[0]], 'no token row left';
    admin_is(admin([ 'user', 'disable', $alice->{username} ]), 0,
        "$alice->{username} (user $alice->{user_id}) was already disabled\nended 0 sessions\n", '', 'again: says so, exit 0');
    admin_is(admin([qw(user disable nobody27)]), 1, '', "kvapi-admin: no user 'nobody27'\n", 'no such user: exit 1');
    token_works($s, $bob->{t}{access}, 'another user is untouched');
};

subtest 'user enable' => sub {
    admin_is(admin([ 'user', 'enable', $alice->{username} ]), 0,
        "enabled $alice->{username} (user $alice->{user_id})\n", '', 'exit 0, says what it did');
    $alice->{t} = login_ok($s, $alice, 'logins work again');
    token_works($s, $alice->{t}{access}, 'and give working tokens');
    my ($k) = @{ $s->request(GET => '/api/data/k1', { headers => $s->auth($alice->{t}{access}) })->{json}{data} // {} }{value};
    is_deeply $k, { a => 1 }, 'the data was kept';
    show_is($alice, show_expected($alice, $alice->{t}{access}), 'user show: disabled_at null again');
    admin_is(admin([ 'user', 'enable', $alice->{username} ]), 0,
        "$alice->{username} (user $alice->{user_id}) was already enabled\n", '', 'again: says so, exit 0');
    admin_is(admin([qw(user enable nobody27)]), 1, '', "kvapi-admin: no user 'nobody27'\n", 'no such user: exit 1');
};

subtest 'sessions revoke' => sub {
    my $b2 = login_ok($s, $bob, 'setup: bob\'s second session');
    admin_is(admin([ 'sessions', 'revoke', $bob->{username} ]), 0,
        "ended the sessions of $bob->{username} (user $bob->{user_id})\nended 2 sessions\n", '', 'exit 0, says how many');
    token_dead($s, $bob->{t}{access}, 'the first session\'s token is refused');
    token_dead($s, $b2->{access}, 'and the second\'s');
    grant_error($s, refresh($s, $b2->{refresh}), 'the refresh token too');
    $bob->{t} = login_ok($s, $bob, 'bob may log in again');
    token_works($s, $alice->{t}{access}, 'another user is untouched');
    admin_is(admin([qw(sessions revoke nobody27)]), 1, '', "kvapi-admin: no user 'nobody27'\n", 'no such user: exit 1');
};

subtest 'user delete' => sub {
    admin_is(admin([ 'user', 'delete', $alice->{username} ]), 0,
        "deleted $alice->{username} (user $alice->{user_id}), its sessions and 2 keys\n", '', 'exit 0, says what went');
    token_dead($s, $alice->{t}{access}, 'its token is refused');
    $s->error_is(login($s, $alice), 'INVALID_CREDENTIALS', 'its login: INVALID_CREDENTIALS');
    is_deeply trace_rows($s, $alice->{user_id}, []), [], 'no row of it is left anywhere';
    admin_is(admin([ 'user', 'show', $alice->{username} ]), 1, '', "kvapi-admin: no user '$alice->{username}'\n",
        'user show: no such user');
    admin_is(admin([ 'user', 'delete', $alice->{username} ]), 1, '', "kvapi-admin: no user '$alice->{username}'\n",
        'again: exit 1');
    my $r = $s->register(username => $alice->{username}, email => $alice->{email}, password => 'correct horse 27',
        full_name => 'New');
    is $r->{status}, 201, 'the name and the email are free again';
};

# Expired rows of every kind purge deletes, beside live ones.
subtest 'purge' => sub {
    my $c = $carol->{user_id};
    my ($sid) = @{ $s->sql("SELECT HEX(id) FROM sessions WHERE user_id = $c")->[0] };
    $s->sql(join ";\n",
        (map { "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES "
            . "(UNHEX(SHA2(UUID(), 256)), $c, UTC_TIMESTAMP(6) - INTERVAL 2 DAY, UTC_TIMESTAMP(6) - INTERVAL $_ SECOND)" } 1 .. 3),
        (map { "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES "
            . "(UNHEX(MD5(UUID())), $c, UTC_TIMESTAMP(6) - INTERVAL 3 DAY, UTC_TIMESTAMP(6) - INTERVAL 2 DAY)" } 1 .. 2),
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES "
            . "(UNHEX(SHA2(UUID(), 256)), UNHEX('$sid'), UTC_TIMESTAMP(6) - INTERVAL 2 DAY, UTC_TIMESTAMP(6) - INTERVAL 1 DAY)",
        # Past 1000: purge goes on until nothing is left.
        "INSERT INTO login_failures (name_hash, failed_at) SELECT UNHEX(SHA2(seq, 256)), "
            . "UTC_TIMESTAMP(6) - INTERVAL 1 DAY FROM seq_1_to_2500",
        "INSERT INTO login_failures (name_hash, failed_at) VALUES (UNHEX(SHA2('live', 256)), UTC_TIMESTAMP(6))");
    my $count = sub {
        $s->sql("SELECT (SELECT COUNT(*) FROM tokens), (SELECT COUNT(*) FROM sessions), "
            . "(SELECT COUNT(*) FROM refresh_tokens), (SELECT COUNT(*) FROM login_failures)")->[0];
    };
    my $before = $count->();
    admin_is(admin(['purge']), 0, "purged 2506 rows\n", '', 'every expired row: 3 + 2 + 1 + 2500');
    is_deeply $count->(), [ $before->[0] - 3, $before->[1] - 2, $before->[2] - 1, $before->[3] - 2500 ],
        'exactly those went';
    is_deeply $s->sql("SELECT COUNT(*) FROM login_failures WHERE failed_at < UTC_TIMESTAMP(6) - INTERVAL 1 HOUR"
        . " UNION ALL SELECT COUNT(*) FROM tokens WHERE expires_at < UTC_TIMESTAMP(6)"), [[0], [0]], 'none is left';
    token_works($s, $carol->{t}{access}, 'live tokens stay');
    admin_is(admin(['purge']), 0, "purged 0 rows\n", '', 'again: nothing');
};

subtest 'stats' => sub {
    admin([ 'user', 'disable', $bob->{username} ]);
    my ($users, $dis, $keys, $ses, $tok) = @{ $s->sql("SELECT (SELECT COUNT(*) FROM users), "
        . "(SELECT COUNT(*) FROM users WHERE disabled_at IS NOT NULL), (SELECT COUNT(*) FROM data), "
        . "(SELECT COUNT(*) FROM sessions WHERE expires_at > UTC_TIMESTAMP(6)), "
        . "(SELECT COUNT(*) FROM tokens WHERE expires_at > UTC_TIMESTAMP(6))")->[0] };
    is "$users $dis $keys", '4 1 0', 'setup: four users, one disabled, no key';
    my $r = admin(['stats']);
    is $r->{rc}, 0, 'exit 0';
    is $r->{err}, '', 'nothing on stderr';
    json_is({ status => 200, body => $r->{out} },
        { users => 0 + $users, users_disabled => 0 + $dis, keys => 0 + $keys, sessions => 0 + $ses, tokens => 0 + $tok },
        'the counts, as numbers');
    ok $ses >= 2 && $tok >= 2, "live sessions ($ses) and tokens ($tok) counted";
};

subtest 'the database unreachable: exit 3' => sub {
    for my $args ([qw(stats)], [qw(user show x)], [qw(purge)], [qw(user list)]) {
        my $r = admin($args, KVAPI_DB_SOCKET => $s->dir . '/no.sock');
        is $r->{rc}, 3, "@$args: exit 3";
        like $r->{err}, qr/kvapi-admin: [a-z ]+: cannot reach the database\n\z/, 'says so on stderr';
        unlike $r->{err}, qr/\Q${\ $s->db_password }\E/, 'without the password';
        is $r->{out}, '', 'nothing on stdout';
    }
};

done_testing;
