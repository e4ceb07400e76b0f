# Schema migrations (kvapi-migrate, sql/migrations/): a database made from
# the first schema keeps its rows through an upgrade, a second run changes
# nothing, concurrent runs apply a migration once, a failed migration is
# not recorded, the migrations end in the very tables sql/schema.sql
# makes, and a round-1 database with users, keys and tokens takes the
# sessions migration of issue 14 (its old tokens work on as sessions).
# Test-only migrations (numbered 99xx, in a temporary directory) stand
# for the next release's, after every shipped one (@SHIPPED).
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is);
use KVAccount qw(:all);

my $SRCDIR = $ENV{KVAPI_SRCDIR} // abs_path(dirname(__FILE__) . '/..');
my $BUILDDIR = $ENV{KVAPI_BUILDDIR} // $SRCDIR;
my $STACK = "$SRCDIR/script/stack";
my $MIGRATE = "$BUILDDIR/script/kvapi-migrate";
my $MIGRATIONS = "$SRCDIR/sql/migrations";
-x $MIGRATE or plan skip_all => "$MIGRATE is not built (make)";

my $tmp = tempdir('kvm-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{KVAPI_TEST_KEEP});
my $var = $ENV{KVAPI_TEST_DB_VAR};
my $own_db = !($var && -S "$var/run/mysqld.sock");
if ($own_db) {
    $var = "$tmp/db";
    system($STACK, 'db-up', $var) == 0 or BAIL_OUT('cannot start MariaDB');
}
my $me = getpwuid($<);
my $tag = sprintf 'kvm_%d_%04d', $$, int rand 10000;
my (@dbs, @users);

END {
    local $?;
    sql(undef, join '', map({ "DROP DATABASE IF EXISTS `$_`;\n" } @dbs),
        map({ "DROP USER IF EXISTS '$_'\@'localhost';\n" } @users)) if $var;
    system($STACK, 'db-down', $var) if $own_db && $var;
}

# Run SQL as the admin; rows of tab-separated fields.
sub sql {
    my ($db, $text) = @_;
    my $in = "$tmp/sql.in";
    open my $fh, '>', $in or die "$in: $!";
    print $fh $text;
    close $fh;
    my $out = qx{$STACK sql '$var' @{[ $db // '' ]} <'$in'};
    die "sql failed: $text" if $?;
    return [map { [split /\t/, $_, -1] } split /\n/, $out];
}

sub new_db {
    my ($name, $schema) = @_;
    my $db = "${tag}_$name";
    push @dbs, $db;
    sql(undef, "CREATE DATABASE `$db` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n");
    if ($schema) {
        open my $fh, '<', $schema or die "$schema: $!";
        local $/;
        sql($db, scalar <$fh>);
    }
    return $db;
}

# A migrations directory: the shipped ones plus test-only files.
sub migrations {
    my (%extra) = @_;
    my $dir = tempdir('mig-XXXXXX', DIR => $tmp);
    copy($_, $dir) or die "copy $_: $!" for glob "$MIGRATIONS/*.sql";
    for my $name (keys %extra) {
        open my $fh, '>', "$dir/$name" or die "$dir/$name: $!";
        print $fh $extra{$name};
        close $fh;
    }
    return $dir;
}

# Run kvapi-migrate on database $db: (exit status, stdout + stderr).
sub migrate {
    my ($db, $dir, @opt) = @_;
    my $conf = "$tmp/$db.conf";
    open my $fh, '>', $conf or die "$conf: $!";
    print $fh "db_socket = $var/run/mysqld.sock\ndb_name = $db\ndb_user = ${tag}_u\n";
    close $fh;
    my $q = join ' ', map { "'$_'" } $MIGRATE, '-c', $conf, ($dir ? ('-d', $dir) : ()),
        @opt, '--', '--no-defaults', "--user=$me";
    my $out = qx{$q 2>&1 </dev/null};
    return ($? >> 8, $out);
}

sub rows { sql($_[0], "SELECT ${\($_[2] // '*')} FROM $_[1] ORDER BY 1, 2;\n") }
sub versions { [map { $_->[0] } @{ sql($_[0], "SELECT version FROM schema_version ORDER BY version;\n") }] }

# The shipped migrations: their versions and names, in order.
my @SHIPPED = map { m{/(\d{4})_([a-z0-9_]+)\.sql\z} ? [$1 + 0, "$1_$2"] : () } sort glob "$MIGRATIONS/*.sql";
my @V = map { $_->[0] } @SHIPPED;
my $APPLIED = join '.*', map { "applied $_->[1]\n" } @SHIPPED;
my $LISTED = join '', map { "$_->[1] applied \\d{4}-.*\n" } @SHIPPED;
# The columns of 0001's tables, which later migrations leave as they are.
my %COLS0001 = (
    users => 'id, username, email, email_key, password_hash, full_name, age, gender, created_at',
    tokens => 'token_hash, user_id, created_at, expires_at',
);

my $probe = <<'EOF';
-- The next release, as a test sees it: a table, a column and an index
-- added to tables that hold rows.  The INSERT counts how often it ran.
CREATE TABLE IF NOT EXISTS mig_probe (n INT NOT NULL);
INSERT INTO mig_probe VALUES (1);
ALTER TABLE data ADD COLUMN IF NOT EXISTS probe INT NULL;
CREATE INDEX IF NOT EXISTS ix_data_probe ON data (user_id, probe);
EOF

subtest 'an upgrade keeps the rows; a second run changes nothing' => sub {
    my $db = new_db('up', "$MIGRATIONS/0001_initial.sql");
    sql($db, <<'EOF');
INSERT INTO users (id, username, email, email_key, password_hash, full_name, age, gender)
  VALUES (1, 'alice', 'Alice@example.com', 'alice@example.com', '$2b$04$x', 'Alice', 30, 'female'),
         (2, 'bob', 'bob@example.com', 'bob@example.com', '$2b$04$y', 'Bob', NULL, NULL);
INSERT INTO tokens (token_hash, user_id, created_at, expires_at)
  VALUES (UNHEX(SHA2('t', 256)), 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL 1 HOUR);
INSERT INTO data (user_id, k, v) VALUES (1, 'a', '1'), (1, 'b/c d', '{"x":[1,2]}'), (2, 'a', '"two"');
EOF
    my %before = map { $_ => rows($db, $_, $COLS0001{$_}) } qw(users tokens data);
    my $dir = migrations('9901_probe.sql' => $probe);

    my ($rc, $out) = migrate($db, $dir);
    is($rc, 0, 'first run succeeds') or diag $out;
    like($out, qr/${APPLIED}.*applied 9901_probe\n/s, 'it applies the shipped ones, then 9901');
    is_deeply(versions($db), [@V, 9901], 'schema_version records them all');
    is_deeply(rows($db, $_, $COLS0001{$_}), $before{$_}, "$_ rows kept") for qw(users tokens);
    # 0002: the 0.1.0 token is a session of its own, ending with it.
    is_deeply(sql($db, "SELECT s.user_id, s.expires_at = t.expires_at, s.refreshed_at IS NULL, "
            . "(SELECT COUNT(*) FROM refresh_tokens) FROM tokens t JOIN sessions s ON s.id = t.session_id;\n"),
        [[1, 1, 1, 0]], "0002: the old token has a session of its own, without a refresh token");
    is_deeply([map { [@$_[0 .. 4]] } @{ rows($db, 'data') }],
        [map { [@$_[0 .. 4]] } @{ $before{data} }], 'data rows kept');
    is(sql($db, "SELECT COUNT(*) FROM data WHERE probe IS NULL;\n")->[0][0], 3,
        'the new column is there, empty');
    # 0003: each user's usage (keys, bytes of key + value) is counted
    # from the rows there, and the triggers keep it from then on.
    my $usage = "SELECT user_id, key_count, byte_count FROM user_usage ORDER BY user_id;\n";
    is_deeply(sql($db, $usage), [[1, 2, 18], [2, 1, 6]], '0003: the usage counted from the rows there');
    sql($db, "INSERT INTO data (user_id, k, v) VALUES (2, 'bb', '[]');\n"
        . "DELETE FROM data WHERE user_id = 1 AND k = 'a';\n"
        . qq{UPDATE data SET v = '"three"' WHERE user_id = 2 AND k = 'a';\n});
    is_deeply(sql($db, $usage), [[1, 1, 16], [2, 2, 12]], 'the triggers count an insert, a delete and an update');
    is(sql($db, "SELECT COUNT(*) FROM data WHERE expires_at IS NULL;\n")->[0][0], 3,
        '0003: no pair expires');
    sql($db, "INSERT INTO data (user_id, k, v) VALUES (1, 'a', '1');\n"
        . qq{UPDATE data SET v = '"two"' WHERE user_id = 2 AND k = 'a';\n}
        . "DELETE FROM data WHERE k = 'bb';\n");

    ($rc, $out) = migrate($db, $dir);
    is($rc, 0, 'second run succeeds') or diag $out;
    like($out, qr/^kvapi-migrate: \Q$db\E: up to date$/m, 'and says up to date');
    unlike($out, qr/applied/, 'applying nothing');
    is(sql($db, "SELECT COUNT(*) FROM mig_probe;\n")->[0][0], 1, 'the probe ran once');

    ($rc, $out) = migrate($db, $dir, '--status');
    is($rc, 0, '--status succeeds');
    like($out, qr/^${LISTED}9901_probe applied \d{4}-/m, '--status lists them all');

    ($rc, $out) = migrate($db, $MIGRATIONS);
    is($rc, 0, 'a release that lacks 9901 still runs');
    like($out, qr/migration 9901 was applied .* but is not in/, 'and says a newer kvapi migrated');
};

subtest 'runs at the same time apply each migration once' => sub {
    my $db = new_db('race', "$MIGRATIONS/0001_initial.sql");
    my $dir = migrations('9901_probe.sql' => "DO SLEEP(1);\n$probe");
    my @kids;
    for my $i (1, 2) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my ($rc, $out) = migrate($db, $dir);
            open my $fh, '>', "$tmp/race.$i" or die;
            print $fh $out;
            close $fh;
            POSIX::_exit($rc);    # not END: that is the parent's
        }
        push @kids, $pid;
    }
    my @rc = map { waitpid($_, 0); $? >> 8 } @kids;
    my $out = join '', map { local (@ARGV, $/) = "$tmp/race.$_"; <> } 1, 2;
    is_deeply(\@rc, [0, 0], 'both runs succeed') or diag $out;
    is(sql($db, "SELECT COUNT(*) FROM mig_probe;\n")->[0][0], 1, 'the probe ran once');
    like($out, qr/9901_probe was applied by another run meanwhile/, 'one run waited for the other');
    is_deeply(versions($db), [@V, 9901], 'recorded once');
};

subtest 'a failed migration is not recorded and stops the run' => sub {
    my $db = new_db('fail');
    my $dir = migrations('9901_broken.sql' => "CREATE TABLE broken (;\n",
        '9902_probe.sql' => $probe);
    my ($rc, $out) = migrate($db, $dir);
    is($rc, 1, 'exit status 1');
    like($out, qr/ERROR .*\n.*9901_broken failed/, 'the server error, and which migration');
    is_deeply(versions($db), \@V, 'only the shipped ones are recorded');
    is(sql($db, "SHOW TABLES LIKE 'mig_probe';\n")->[0], undef, '9902 did not run');
};

subtest 'bad input' => sub {
    my ($rc, $out) = migrate("${tag}_none", $MIGRATIONS);
    is($rc, 1, 'a missing database: exit 1');
    like($out, qr/database \Q${tag}_none\E does not exist \(kvapi-migrate --create makes it\)/,
        'and why');
    my $db = new_db('names');
    for my $bad ('2_short.sql', '0002-dash.sql', '0002_Upper.sql') {
        my $dir = migrations($bad => "SELECT 1;\n");
        ($rc, $out) = migrate($db, $dir);
        is($rc, 1, "$bad: exit 1");
        like($out, qr/\Q$bad\E: not a migration name/, "$bad: named");
    }
    my $dir = migrations('0001_again.sql' => "SELECT 1;\n");
    ($rc, $out) = migrate($db, $dir);
    like($out, qr/version 1 is also/, 'two files of one version');
    ($rc, $out) = migrate($db, $MIGRATIONS, '--bogus');
    is($rc, 2, 'an unknown option: exit 2');
    is_deeply(sql($db, "SHOW TABLES;\n"), [], 'none of it touched the database');
};

subtest '--create makes the database and a socket-identified user' => sub {
    my $db = "${tag}_new";
    push @dbs, $db;
    push @users, "${tag}_u";
    my ($rc, $out) = migrate($db, $MIGRATIONS, '--create');
    is($rc, 0, 'exit 0') or diag $out;
    is_deeply(versions($db), \@V, 'schema applied');
    my $grants = join "\n", map { $_->[0] } @{ sql(undef, "SHOW GRANTS FOR '${tag}_u'\@'localhost';\n") };
    like($grants, qr/IDENTIFIED VIA unix_socket/, 'identified by the socket');
    like($grants, qr/GRANT SELECT, INSERT, UPDATE, DELETE ON `\Q$db\E`\.\*/, 'rows only');
    unlike($grants, qr/CREATE|ALTER|DROP|ALL PRIVILEGES/, 'no schema rights');
    is(sql(undef, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db';\n")->[0][0],
        'utf8mb4_bin', 'utf8mb4_bin');
    ($rc, $out) = migrate($db, $MIGRATIONS, '--create');
    is($rc, 0, 'again: exit 0');
    like($out, qr/up to date/, 'again: up to date');
};

# Issue 14: the sessions migration (0002_sessions) on a database of
# round 1.  Every user and key is kept, and the access tokens issued
# before it keep working: each is a session of its own, without a refresh
# token, listed with its own times (decisions), and revocable.  A stack
# (KVTest, on this file's MariaDB) serves the upgraded database.
subtest 'round 1 to sessions: users, keys and tokens kept; each old token a session' => sub {
    my $db = new_db('sess', "$MIGRATIONS/0001_initial.sql");
    my ($app, $pass) = ("${tag}_app", join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24);
    push @users, $app;
    sql(undef, "CREATE USER '$app'\@'localhost' IDENTIFIED BY '$pass';\n"
        . "GRANT SELECT, INSERT, UPDATE, DELETE ON `$db`.* TO '$app'\@'localhost';\n");
    my %pw = (alice => 'alice password 86', bob => 'bob password 86');
    my %hash = map { $_ => crypt($pw{$_}, '$2b$04$' . substr("kvapi86${_}saltsaltsaltsalt", 0, 22)) } keys %pw;
    like($hash{$_}, qr/\A\$2b\$04\$.{53}\z/, "setup: a bcrypt hash of ${_}'s password") for sort keys %hash;
    # Whole seconds, so that the listed times are exact.
    my $now = time;
    my $at = sub { POSIX::strftime('%Y-%m-%d %H:%M:%S', gmtime($now + $_[0])) };
    my $rfc = sub { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($now + $_[0])) };
    my %tok = (a1 => 'A1' . 'a' x 41, a2 => 'A2' . 'b' x 41, b => 'B0' . 'c' x 41, ax => 'AX' . 'd' x 41);
    my @times = ([ a1 => 1, -600, 3000 ], [ a2 => 1, -300, 3300 ], [ b => 2, -100, 3500 ], [ ax => 1, -7200, -3600 ]);
    sql($db, "INSERT INTO users (id, username, email, email_key, password_hash, full_name, age, gender, created_at) VALUES"
        . " (1, 'alice', 'Alice\@example.com', 'alice\@example.com', '$hash{alice}', 'Alice', 30, 'female', '" . $at->(-86400) . "'),"
        . " (2, 'bob', 'bob\@example.com', 'bob\@example.com', '$hash{bob}', 'Bob', NULL, NULL, '" . $at->(-86400) . "');\n"
        . "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES "
        . join(', ', map { "(UNHEX(SHA2('$tok{$_->[0]}', 256)), $_->[1], '" . $at->($_->[2]) . "', '" . $at->($_->[3]) . "')" } @times)
        . ";\nINSERT INTO data (user_id, k, v) VALUES (1, 'a', '1'), (1, 'b/c d', '{\"x\":[1,2]}'), (2, 'a', '\"two\"');\n");
    my %before = map { $_ => rows($db, $_) } qw(users data);

    my ($rc, $out) = migrate($db, $MIGRATIONS);
    is($rc, 0, 'kvapi-migrate upgrades it') or diag $out;
    like($out, qr/applied 0002_sessions$/m, 'applying 0002_sessions');
    ok((grep { $_ == 2 } @{ versions($db) }), 'schema_version records 2');
    is_deeply([ map { [ @$_[0 .. 8] ] } @{ rows($db, 'users') } ], $before{users}, 'users rows kept (the round-1 columns)');
    is_deeply([ map { [ @$_[0 .. 5] ] } @{ rows($db, 'data') } ], [ map { [ @$_[0 .. 5] ] } @{ $before{data} } ],
        'data rows kept');
    ($rc, $out) = migrate($db, $MIGRATIONS);
    like($out, qr/up to date/, 'a second run changes nothing');

    my $s = eval { KVTest->start(external_db => 1, db_socket => "$var/run/mysqld.sock", db_name => $db,
        db_user => $app, db_password => $pass) };
    ok($s, 'a stack serves the upgraded database') or return diag $@;
    my $get = sub { $s->request(GET => $_[1], { headers => $s->auth($tok{ $_[0] }) }) };
    json_is($get->(a1 => '/api/data/a'), { status => 'success', data => { key => 'a', value => 1 } },
        'alice\'s first old token reads her key');
    json_is($get->(a2 => '/api/data/b%2Fc%20d'), { status => 'success', data => { key => 'b/c d', value => { x => [ 1, 2 ] } } },
        'her second one too');
    json_is($get->(b => '/api/data/a'), { status => 'success', data => { key => 'a', value => 'two' } },
        'bob\'s reads his');
    token_dead($s, $tok{ax}, 'the token that had expired before the upgrade stays refused');

    my $r = $get->(a1 => '/api/sessions');
    my $items = session_items($r);
    my @ids = map { ref $_ eq 'HASH' ? $_->{session_id} // '' : '' } @$items;
    like($_, qr/\A$B64{22}\z/, "an old token's session id: $_") for @ids;
    json_is($r, { status => 'success', data => { items => [
        { session_id => $ids[0] // 'missing', created_at => $rfc->(-300), refreshed_at => undef,
          expires_at => $rfc->(3300), user_agent => undef, current => JSON::PP::false },
        { session_id => $ids[1] // 'missing', created_at => $rfc->(-600), refreshed_at => undef,
          expires_at => $rfc->(3000), user_agent => undef, current => JSON::PP::true },
    ] } }, 'alice\'s two live old tokens are two sessions with their own times, newest first');
    my $rb = session_items($get->(b => '/api/sessions'));
    is(scalar @$rb, 1, 'bob has one session');

    $r = $s->request(DELETE => '/api/sessions/' . ($ids[0] // 'missing'), { headers => $s->auth($tok{a1}) });
    json_is($r, { status => 'success', message => 'Session revoked.' }, 'an old token\'s session can be revoked');
    token_dead($s, $tok{a2}, 'and that token is then refused');
    token_works($s, $tok{a1}, 'the other one still works');
    my $t = login_ok($s, { username => 'alice', password => $pw{alice} }, 'alice logs in with her old password');
    is(scalar @{ session_items($get->(a1 => '/api/sessions')) }, 2, 'a new session beside the old token\'s');
    token_ok(refresh($s, $t->{refresh}), 'the new session rotates', session => $t->{session});
    $r = $s->request(DELETE => '/api/token', { headers => $s->auth($tok{b}) });
    is($r->{status}, 200, 'bob logs his old token out') or diag $r->{body};
    token_dead($s, $tok{b}, 'then it is refused');
    $s->stop;
};

# What the workers see: every table, column, key and option.
sub tables {
    my ($db) = @_;
    my %t;
    for my $row (@{ sql($db, "SHOW TABLES;\n") }) {
        next if $row->[0] eq 'schema_version';
        my $create = sql($db, "SHOW CREATE TABLE `$row->[0]`;\n")->[0][1];
        $create =~ s/\\n/\n/g;
        $create =~ s/ AUTO_INCREMENT=\d+//;
        $t{ $row->[0] } = $create;
    }
    # The usage triggers and their procedure (0003).
    $t{"trigger $_->[0]"} = "@$_[1 .. 3]" for @{ sql($db, "SELECT TRIGGER_NAME, "
        . "EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS "
        . "WHERE TRIGGER_SCHEMA = DATABASE();\n") };
    $t{"routine $_->[0]"} = "@$_[1 .. 2]" for @{ sql($db, "SELECT ROUTINE_NAME, "
        . "ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
        . "WHERE ROUTINE_SCHEMA = DATABASE();\n") };
    return \%t;
}

subtest 'the migrations make what sql/schema.sql makes' => sub {
    my $fresh = new_db('fresh');
    my ($rc, $out) = migrate($fresh, $MIGRATIONS);
    is($rc, 0, 'migrations on an empty database') or diag $out;
    my $schema = new_db('schema', "$SRCDIR/sql/schema.sql");
    is_deeply(tables($fresh), tables($schema),
        'same tables (a schema change needs a migration and a schema.sql edit alike)');

    # script/stack db-create's databases (schema.sql, no schema_version).
    sql($schema, "INSERT INTO users (username, email, email_key, password_hash, full_name) VALUES ('u', 'u\@x.io', 'u\@x.io', 'h', 'U');\n");
    ($rc, $out) = migrate($schema, $MIGRATIONS);
    is($rc, 0, 'a database made from schema.sql takes the migrations') or diag $out;
    is_deeply(versions($schema), [map { /(\d{4})_/ ? $1 + 0 : () } sort glob "$MIGRATIONS/*.sql"],
        'and records them all');
    is(sql($schema, "SELECT COUNT(*) FROM users;\n")->[0][0], 1, 'its rows kept');
};

done_testing;
