# The per-account lock-out of the password grant (API.md "Accounts and
# sessions", ACCOUNT_LOCKED; issue 14 and its decisions): 5 failures of
# one username within 15 minutes lock further password logins (the 6th
# attempt answers 429 ACCOUNT_LOCKED with Retry-After, right password or
# not), for real and unknown usernames alike, counted without regard to
# case; a success clears the count; wrong passwords of password change
# and account deletion do not count; the refresh grant is no password
# login; login_max_failures and login_failure_window configure it, a
# locked attempt is not counted and the lock ends with the window; a
# locked attempt costs no bcrypt (measured as the auth workers' CPU time,
# not as wall time), and the count holds across workers.
use strict;
use warnings;
use utf8;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use lib 't/lib';
use KVTest qw(json_is);
use KVAccount qw(:all);
use KVLoad;

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $s = KVTest->start;

# One test: ACCOUNT_LOCKED, with Retry-After at most $window and, since
# the first counted failure happened after $t0 (our clock), at least the
# window minus the time since then (and one second of rounding).
sub locked_ok {
    my ($r, $window, $t0, $name) = @_;
    my $ra = $r->{headers}{'retry-after'};
    subtest $name => sub {
        $s->error_is($r, 'ACCOUNT_LOCKED', 'ACCOUNT_LOCKED');
        ok defined $ra && $ra =~ /\A[0-9]+\z/ && $ra >= 1 && $ra <= $window,
            "Retry-After ${\ ($ra // 'missing')}: whole seconds in 1..$window";
        my $least = defined $t0 ? $window - POSIX::ceil(time - $t0) - 1 : 0;
        ok defined $ra && $ra =~ /\A[0-9]+\z/ && $ra >= $least,
            "Retry-After is the time left of the window (at least $least)" if $least > 1;
    };
}

sub fail_n {
    my ($st, $u, $n, $what, %o) = @_;
    for my $i (1 .. $n) {
        my $name = $o{names} ? $o{names}[ ($i - 1) % @{ $o{names} } ] : $u->{username};
        $st->error_is(login($st, $u, username => $name, password => "wrong password $i"),
            'INVALID_CREDENTIALS', "$what $i ($name)");
    }
}

subtest 'a real username: five failures, then ACCOUNT_LOCKED' => sub {
    my $u = $s->new_user('l22real');
    my $t = login_ok($s, $u, 'setup: a session opened before the failures');
    my $t0 = time;
    fail_n($s, $u, 5, 'wrong password');
    locked_ok(login($s, $u, password => 'wrong password 6'), 900, $t0, 'the 6th attempt, a wrong password: locked');
    locked_ok(login($s, $u), 900, $t0, 'the right password: locked too');
    locked_ok(login($s, $u, username => uc $u->{username}), 900, $t0, 'the username in upper case: locked');
    locked_ok(login($s, $u, username => lc $u->{username}), 900, $t0, 'in lower case: locked');
    locked_ok(login($s, $u, extra => { grant_type => 'password' }), 900, $t0, 'grant_type "password": locked');

    # The order of the password grant (decisions).
    $s->error_is(login($s, $u, password => ''), 'MISSING_FIELDS', 'MISSING_FIELDS comes before ACCOUNT_LOCKED');
    $s->error_is(login($s, $u, extra => { grant_type => 'other' }), 'UNSUPPORTED_GRANT_TYPE',
        'UNSUPPORTED_GRANT_TYPE before ACCOUNT_LOCKED');
    $s->error_is(token_req($s, qq({"username":"$u->{username}","username":"$u->{username}","password":"x"})),
        'INVALID_JSON', 'INVALID_JSON before ACCOUNT_LOCKED');

    # Only password logins are locked.
    token_works($s, $t->{access}, 'an access token of before still works');
    token_works($s, $u->{token}, 'so does the one of registration');
    token_ok(refresh($s, $t->{refresh}), 'the refresh grant is no password login: it rotates',
        session => $t->{session});

    my $v = $s->new_user('l22other');
    login_ok($s, $v, 'another user logs in from the same address (the lock is per username)');
};

subtest 'an unknown username is counted the same way' => sub {
    my $ghost = { username => "Ghost_22_$$", password => 'correct horse 1' };
    my $t0 = time;
    fail_n($s, $ghost, 5, 'unknown user', names => [ $ghost->{username}, lc $ghost->{username},
        uc $ghost->{username}, ucfirst lc $ghost->{username}, $ghost->{username} ]);
    locked_ok(login($s, $ghost), 900, $t0, 'the 6th attempt: locked, as for a real user');
    locked_ok(login($s, $ghost, username => lc $ghost->{username}), 900, $t0, 'in lower case: locked');
    $s->error_is(login($s, $ghost, username => "${\ $ghost->{username}}x"), 'INVALID_CREDENTIALS',
        'a username one character longer is another username');
};

subtest 'failures are counted without regard to case' => sub {
    my $u = $s->new_user('L22Case');
    my $t0 = time;
    fail_n($s, $u, 5, 'wrong password', names => [ $u->{username}, lc $u->{username}, uc $u->{username},
        lc $u->{username}, uc $u->{username} ]);
    locked_ok(login($s, $u), 900, $t0, 'the right password, as registered: locked after five in mixed case');
};

subtest 'a success before the limit clears the count' => sub {
    my $u = $s->new_user('l22clear');
    fail_n($s, $u, 4, 'wrong password');
    login_ok($s, $u, 'the right password after four failures: logged in');
    my $t0 = time;
    fail_n($s, $u, 5, 'again: wrong password');
    locked_ok(login($s, $u), 900, $t0, 'locked only after five new failures');
};

subtest 'wrong passwords of password change and account deletion do not count' => sub {
    my $u = $s->new_user('l22pwchg');
    my $t0 = time;
    fail_n($s, $u, 4, 'login, wrong password');
    for my $i (1 .. 3) {
        $s->error_is(user_req($s, PUT => '/api/users/me/password', $u->{token},
            { current_password => "wrong password p$i", new_password => 'a new password 22' }),
            'INVALID_CREDENTIALS', "password change, wrong current_password $i");
        $s->error_is(user_req($s, DELETE => '/api/users/me', $u->{token}, { password => "wrong password d$i" }),
            'INVALID_CREDENTIALS', "account deletion, wrong password $i");
    }
    $s->error_is(login($s, $u, password => 'wrong password 5'), 'INVALID_CREDENTIALS',
        'the 5th failed login is still INVALID_CREDENTIALS');
    locked_ok(login($s, $u), 900, $t0, 'the 6th: locked');
};

subtest 'ACCOUNT_LOCKED comes before ACCOUNT_DISABLED' => sub {
    my $u = $s->new_user('l22dis');
    my $r = $s->request(DELETE => '/api/token', { headers => $s->auth($u->{token}) });
    is $r->{status}, 200, 'setup: end the session of registration' or diag $r->{body};
    ok eval { $s->sql("UPDATE users SET disabled_at = UTC_TIMESTAMP(6) WHERE username = '$u->{username}'"); 1 },
        'setup: the account is disabled (SQL, until kvapi-admin)' or diag $@;
    $s->error_is(login($s, $u), 'ACCOUNT_DISABLED', 'the right password: ACCOUNT_DISABLED');
    my $t0 = time;
    fail_n($s, $u, 5, 'wrong password');
    locked_ok(login($s, $u), 900, $t0, 'after five failures the right password: ACCOUNT_LOCKED, not DISABLED');
};

# A second stack: three failures within three seconds.
my $s2 = KVTest->start(login_max_failures => 3, login_failure_window => 3);

# Log in every 0.1 s until an answer is not ACCOUNT_LOCKED, at most
# $deadline seconds; returns (that answer, how many were locked, any
# other answer seen while locked).
sub poll_unlocked {
    my ($st, $u, $password, $deadline) = @_;
    my ($t0, $locked, @odd) = (time, 0);
    while (1) {
        my $r = login($st, $u, password => $password);
        my $code = ref $r->{json} eq 'HASH' ? $r->{json}{code} // '' : '';
        return ($r, $locked, @odd) unless $r->{status} == 429 && $code eq 'ACCOUNT_LOCKED';
        $locked++;
        push @odd, "Retry-After " . ($r->{headers}{'retry-after'} // 'missing')
            unless ($r->{headers}{'retry-after'} // '') =~ /\A[123]\z/;
        return (undef, $locked, @odd) if time - $t0 > $deadline;
        sleep 0.1;
    }
}

subtest 'login_max_failures 3, login_failure_window 3: the lock ends with the window' => sub {
    my $u = $s2->new_user('l22win');
    my $t0 = time;
    fail_n($s2, $u, 3, 'wrong password');
    locked_ok(login($s2, $u), 3, $t0, 'the 4th attempt, right password: locked, Retry-After 1 to 3');
    my ($r, $locked, @odd) = poll_unlocked($s2, $u, $u->{password}, 20);
    # Ten locked attempts a second would keep it locked for ever if they
    # counted.
    ok $r, "the lock ended although $locked locked attempts came meanwhile: they are not counted";
    is_deeply \@odd, [], 'every locked answer had Retry-After 1 to 3';
    token_ok($r // {}, 'the right password logs in once the window has passed');
    $t0 = time;
    fail_n($s2, $u, 3, 'after that success, wrong password');
    locked_ok(login($s2, $u), 3, $t0, 'locked again only after three new failures');

    my $ghost = { username => "ghost22win_$$", password => 'whatever 22' };
    $t0 = time;
    fail_n($s2, $ghost, 3, 'unknown user');
    locked_ok(login($s2, $ghost), 3, $t0, 'unknown user: the 4th attempt is locked');
    ($r, $locked, @odd) = poll_unlocked($s2, $ghost, 'whatever 22', 20);
    ok $r, "the lock of the unknown user ended too (after $locked locked attempts)";
    $s2->error_is($r // {}, 'INVALID_CREDENTIALS', 'and the next attempt is INVALID_CREDENTIALS again');
};
$s2->stop;

# A third stack: bcrypt cost 12 (a bcrypt is ~0.2 s of CPU) and three
# auth workers.  The auth workers' CPU time (utime + stime of
# /proc/PID/stat) shows where the bcrypts ran and that a locked attempt
# runs none: a measure of work, not of wall time, so a busy machine does
# not change it.
my $s3 = do {
    local $ENV{KVAPI_AUTH_WORKERS} = 3;
    KVTest->start(bcrypt_cost => 12);
};
my $TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

sub cpu_ticks {
    my ($st) = @_;
    my %t;
    for my $pid ($st->worker_pids('auth')) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my ($rest) = (<$fh> // '') =~ /\) (.*)/s or next;
        my @f = split ' ', $rest;
        $t{$pid} = $f[11] + $f[12];
    }
    return \%t;
}

# Wait until the auth workers' CPU time stands still for half a second,
# at most $deadline seconds.
sub settle {
    my ($st, $deadline) = @_;
    my $t0 = time;
    while (time - $t0 < $deadline) {
        my $a = cpu_ticks($st);
        sleep 0.5;
        my $b = cpu_ticks($st);
        return 1 if join(',', map { "$_=$a->{$_}" } sort keys %$a) eq join(',', map { "$_=$b->{$_}" } sort keys %$b);
    }
    return 0;
}

# $n password logins with wrong passwords for one username, sent at once
# by $n clients; returns their answers' "status code" counts.
my $burst_n = 0;
sub burst {
    my ($st, $name, $n) = @_;
    my $load = KVLoad->start(port => $st->port, clients => $n, deadline => 60,
        dir => $st->dir . '/burst-' . ++$burst_n,
        prepare => sub {
            my ($c, $i) = @_;
            $c->prime(POST => '/api/token', op => 'login',
                body => qq({"username":"$name","password":"wrong password $i"}));
        },
        run => sub { $_[0]->request_primed });
    $load->go;
    my $recs = $load->finish;
    is_deeply [ $load->client_failures ], [], "$n clients ran cleanly";
    my %c;
    $c{ $_->{status} . ($_->{code} ? " $_->{code}" : '') }++ for @$recs;
    return \%c;
}

subtest 'the count holds across workers, and a locked attempt costs no bcrypt' => sub {
    my @pids = $s3->worker_pids('auth');
    is scalar @pids, 3, 'three auth workers';
    # Start-up (a worker hashes a dummy password) must be behind us:
    # requests, then until the workers' CPU time stands still.
    is_deeply burst($s3, "l22warm_$$", 5), { '401 INVALID_CREDENTIALS' => 5 }, 'warm-up: five failures of another name';
    ok settle($s3, 30), 'the auth workers are idle';

    my $name = "l22cpu_$$";
    my $before = cpu_ticks($s3);
    is_deeply burst($s3, $name, 5), { '401 INVALID_CREDENTIALS' => 5 },
        'five failed logins of one unknown username at once: five INVALID_CREDENTIALS';
    my $mid = cpu_ticks($s3);
    my %d = map { $_ => ($mid->{$_} // 0) - ($before->{$_} // 0) } @pids;
    my $total = 0;
    $total += $_ for values %d;
    my $per = $total / 5;
    ok $per >= 0.02 * $TCK, sprintf 'a failure costs a bcrypt: %.3f s of CPU each', $per / $TCK;
    my @busy = grep { $d{$_} >= $per / 2 } @pids;
    ok @busy >= 2, sprintf 'the five ran on %d workers (CPU s: %s)', scalar @busy,
        join ' ', map { sprintf '%.2f', $d{$_} / $TCK } @pids;
    locked_ok(login($s3, { username => $name, password => 'x' }), 900, undef,
        'the 6th attempt, on whichever worker: locked (the count is in the database)');

    for my $i (1 .. 20) {
        my $r = login($s3, { username => $name, password => "wrong password l$i" });
        my $code = ref $r->{json} eq 'HASH' ? $r->{json}{code} // '' : '';
        next if $r->{status} == 429 && $code eq 'ACCOUNT_LOCKED';
        fail "locked attempt $i answered $r->{status} $code";
    }
    my $after = cpu_ticks($s3);
    my $spent = 0;
    $spent += ($after->{$_} // 0) - ($mid->{$_} // 0) for @pids;
    is_deeply [ $s3->worker_pids('auth') ], [ sort { $a <=> $b } @pids ], 'the same auth workers (none respawned)';
    ok $spent < 2 * $per, sprintf '20 locked attempts cost %.3f s of CPU, less than two bcrypts (%.3f s each)',
        $spent / $TCK, $per / $TCK;
};
$s3->stop;

done_testing;
