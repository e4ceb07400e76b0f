# The backup and restore drill (docs/operations.md, "Backup and
# restore"; script/backup): a hot backup with mariadb-backup of a private
# MariaDB while four clients write (KVLoad records every request with its
# times), prepared, restored into a fresh data directory, served by a
# fresh MariaDB and a kvapi stack of its own; through that stack's API,
# every write acknowledged before the backup began is there (or a later
# write of the same key that was in flight), no write sent after the
# backup ended is, and every value read back is one that was sent, whole
# (nothing half-written).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use lib 't/lib';
use KVTest qw(poll_until);
use KVLoad;

my $ROOT = $ENV{KVAPI_SRCDIR} // '.';
my $s = KVTest->start(private_db => 1, workers => 4);
my @tokens = map { $s->new_user('b97')->{token} } 1 .. 4;
my ($CLIENTS, $KEYS, $PREFIX) = (4, 10, 'b97');

# Run a script of the tree: its status, with its output (stdout and
# stderr) for a failure's diagnostics.
sub script {
    my @cmd = @_;
    my $out = `@{[ map { quotemeta } @cmd ]} 2>&1`;
    return ($? >> 8, $out);
}

my $load = KVLoad->start(port => $s->port, clients => $CLIENTS, deadline => 120,
    dir => $s->dir . '/load',
    run => KVLoad::writer(tokens => \@tokens, prefix => $PREFIX, keys => $KEYS, pad => 300));
$load->go;
my $acked = $s->access_counter(sub {
    $_[0]{method} =~ /^(?:POST|PUT|DELETE)$/ && $_[0]{path} =~ m{^/api/data} && $_[0]{status} =~ /^2/ });
ok(poll_until(30, sub { $acked->() >= 300 }), 'the load has written before the backup');

my $dest = $s->dir . '/backup';
my $t_begin = time;
my ($rc, $out) = script("$ROOT/script/backup", 'take', $s->db_var, $dest);
my $t_end = time;
is($rc, 0, 'script/backup take, under the load') or diag $out;
my $mark = $acked->();
ok(poll_until(30, sub { $acked->() >= $mark + 50 }), 'the load goes on after it');
$load->stop;
my $recs = $load->finish;
note(sprintf 'backup took %.2f s; %d requests recorded', $t_end - $t_begin, scalar @$recs);

my $is_write = sub { ($_[0]{op} // '') =~ /\A(?:create|update|delete)\z/ };
my @before = grep { $is_write->($_) && $_->{status} >= 200 && $_->{status} < 300 && $_->{t1} < $t_begin } @$recs;
my @during = grep { $is_write->($_) && $_->{status} >= 200 && $_->{status} < 300
    && $_->{t1} >= $t_begin && $_->{t0} < $t_end } @$recs;
cmp_ok(scalar @before, '>=', 300, 'writes acknowledged before the backup began');
cmp_ok(scalar @during, '>', 0, 'and writes acknowledged while it ran: a hot backup');
is(scalar(grep { !KVLoad::writer_allowed($_) } @$recs), 0, 'every answer of the load was an expected one');

($rc, $out) = script("$ROOT/script/backup", 'restore', $dest, $s->dir . '/early');
isnt($rc, 0, 'restore refuses a backup not prepared yet');
like($out, qr/not a prepared backup/, 'and says so');
($rc, $out) = script("$ROOT/script/backup", 'prepare', $dest);
is($rc, 0, 'script/backup prepare') or diag $out;
my $var = $s->dir . '/restored';
($rc, $out) = script("$ROOT/script/backup", 'restore', $dest, $var);
is($rc, 0, 'script/backup restore into a new directory') or diag $out;
($rc, $out) = script("$ROOT/script/backup", 'restore', $dest, $var);
isnt($rc, 0, 'restore refuses a directory that has a database');
($rc, $out) = script("$ROOT/script/stack", 'db-up', $var);
is($rc, 0, 'a fresh MariaDB starts on the restored files') or diag $out;

# A stack of its own on the restored database (the same database, user
# and password: they are in the backup too).
my $r = KVTest->start(external_db => 1, db_socket => "$var/run/mysqld.sock",
    db_name => $s->db_name, db_user => $s->db_user, db_password => $s->db_password);

# The restored state of every key the load used, through the API with
# its owner's token: the value's id, or absent.
my (%db, @bad);
for my $i (0 .. $CLIENTS - 1) {
    my $auth = $r->auth($tokens[ $i % @tokens ]);
    for my $j (0 .. $KEYS - 1) {
        my $k = "${PREFIX}c${i}k$j";
        my $res = $r->request(GET => "/api/data/$k", { headers => $auth });
        if ($res->{status} == 200 && ref $res->{json} eq 'HASH') {
            my $v = $res->{json}{data}{value};
            # Whole: the id with all of its padding, as it was sent.
            push @bad, "$k: $v" unless defined $v && $v eq KVLoad::padded(KVLoad::vid($v), 300);
            $db{$k} = KVLoad::vid($v);
        } elsif ($res->{status} != 404) {
            push @bad, "$k: GET answered $res->{status} $res->{body}";
        }
    }
}
is_deeply(\@bad, [], 'every key reads back, whole, with the tokens of before the backup');

# What the backup may hold: writes answered before it began are certain
# (unless a later write of the key was in flight), writes in flight while
# it ran are possible, writes sent after it ended are not.
my @view = map {
    $_->{t0} >= $t_end ? ()
        : $_->{t1} >= $t_begin ? { %$_, status => 0 }
        : $_
} @$recs;
my $check = KVLoad::check_writes(\@view, \%db);
is_deeply($check->{lost}, [], 'every write acknowledged before the backup is there, nothing else');
is_deeply($check->{violations}, [], 'the load saw nothing impossible');
note("keys $check->{keys}, certain writes $check->{acked}, possible $check->{unknown}, exact $check->{exact}");

$r->stop;
($rc, $out) = script("$ROOT/script/stack", 'db-down', $var);
is($rc, 0, 'the restored MariaDB stops') or diag $out;

done_testing;
