# The database goes away under a write load (a private MariaDB, so the
# other test files do not notice): first a clean stop (db_down), then a
# crash (kill -9 mariadbd, db_up runs InnoDB crash recovery).  The workers
# must stay up (same pids), answer the JSON 503 SERVICE_UNAVAILABLE
# promptly while the database is away, serve normally again once it is
# back without being restarted, and no write answered 2xx may be lost.
# While it is down, a 5xx must leave one worker log line carrying the
# request id that nginx writes to its access log (request_id), and no
# database error text may reach the client.  Before all that, writes
# answered 2xx must survive a crash of the database.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest qw(poll_until);
use KVLoad;

my ($CT, $RT) = (2, 4);    # db_connect_timeout, db_read_timeout
my $s = KVTest->start(private_db => 1, workers => 4,
    db_connect_timeout => $CT, db_read_timeout => $RT);

my @users = map { $s->new_user('f91') } 1 .. 3;
my @tokens = map { $_->{token} } @users;

# A write answered 2xx is durable (API.md "Data model"): keys created and
# replaced one after another, MariaDB killed (-9) the moment the last
# answer came, then started again (crash recovery); every key must hold
# its last acknowledged value.  With commits not flushed at once
# (innodb_flush_log_at_trx_commit = 0) the last second of them is lost.
{
    my $auth = $s->auth($tokens[1]);
    my (%want, @refused);
    for my $i (1 .. 240) {
        my @w = ([ POST => '/api/data', 201, "f91d$i", { key => "f91d$i", value => "v$i" } ]);
        # Every third step also replaces an earlier key's value.
        push @w, [ PUT => '/api/data/f91d' . ($i - 2), 200, 'f91d' . ($i - 2), { value => "w$i" } ]
            if $i % 3 == 0;
        for (@w) {
            my ($m, $path, $ok, $k, $body) = @$_;
            my $r = $s->request($m => $path, { headers => $auth, json => $body });
            if ($r->{status} == $ok) { $want{$k} = $body->{value} }
            else { push @refused, "$m $path: $r->{status} $r->{body}" }
        }
    }
    $s->db_kill;
    is_deeply(\@refused, [], 'durability: every write was acknowledged before the crash');
    $s->db_up;
    ok(poll_until(30, sub { $s->request(GET => '/api/health')->{status} == 200 }),
        'durability: health is 200 again after crash recovery');
    my @lost;
    for my $k (sort keys %want) {
        my $r = $s->request(GET => "/api/data/$k", { headers => $auth });
        # The whole body, compared in canonical form.
        my $exp = $KVTest::JSON->encode({ status => 'success', data => { key => $k, value => $want{$k} } });
        push @lost, "$k: acknowledged $want{$k}, now $r->{status} $r->{body}"
            unless $r->{status} == 200
                && ($r->{headers}{'content-type'} // '') eq 'application/json; charset=utf-8'
                && $r->{json} && $KVTest::JSON->encode($r->{json}) eq $exp;
    }
    is_deeply(\@lost, [], 'durability: all ' . scalar(keys %want)
        . ' acknowledged writes survived the crash, each with its last value')
        or diag scalar(@lost) . ' lost';
}

my %pids0 = map { $_ => [ $s->worker_pids($_) ] } qw(kvapi write auth);
my $SU = KVLoad::envelope('SERVICE_UNAVAILABLE');
my %report;

# One scenario: six writers (and a client logging in) run while $fault
# takes the database away for a while and $restore brings it back.
sub scenario {
    my ($name, $prefix, $fault, $while_down) = @_;
    my $writer = KVLoad::writer(tokens => \@tokens, prefix => $prefix,
        keys => 10);
    my $load = KVLoad->start(port => $s->port, clients => 7, deadline => 45,
        dir => $s->dir . "/load-$prefix",
        run => sub {
            my ($c, $i) = @_;
            return $writer->($c, $i) if $i < 6;
            while ($c->running) {
                $c->request(POST => '/api/token', op => 'login',
                    body => qq({"username":"$users[0]{username}","password":"$users[0]{password}"}));
                sleep 0.02;
            }
        });
    # Progress is read from nginx's access log, not guessed from time.
    my $data = $s->access_counter(sub { $_[0]{path} =~ m{^/api/data} });
    my $unavailable = $s->access_counter(sub { $_[0]{status} == 503 });
    my $ok = $s->access_counter(sub { $_[0]{path} =~ m{^/api/data} && $_[0]{status} =~ /^2/ });
    my ($d0, $u0) = ($data->(), $unavailable->());
    my %t;
    $t{go} = $load->go;
    ok(poll_until(30, sub { $data->() >= $d0 + 100 }), "$name: the load runs before the fault");
    $t{down0} = time;
    $fault->();
    $t{down1} = time;
    ok(poll_until(30, sub { $unavailable->() >= $u0 + 30 }), "$name: clients meet the outage");
    $while_down->() if $while_down;
    $t{up0} = time;
    $s->db_up;
    $t{up1} = time;
    # Enough successes counted from 1.5 s after db_up (the grace of the
    # checks below) for "load went on": at most 7 were in flight then.
    my $ok0;
    ok(poll_until(30, sub {
        $ok0 //= $ok->() if time > $t{up1} + 1.5;
        defined $ok0 && $ok->() >= $ok0 + 40 }), "$name: the load goes on after db_up");
    $load->stop;
    my $recs = $load->finish;
    is_deeply([ $load->client_failures ], [], "$name: load clients ran cleanly");

    my @bad = KVLoad::bad_answers($recs, sub {
        my ($r) = @_;
        return KVLoad::writer_allowed($r) if $r->{op} ne 'login';
        return $r->{status} == 200
            || ($r->{status} == 503 && ($r->{code} // '') eq 'SERVICE_UNAVAILABLE');
    });
    is(scalar @bad, 0, "$name: every answer is the expected one or the JSON 503")
        or diag join "\n", map { KVLoad::fmt_record($_) } @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    my $sum = KVLoad::summary($recs);
    is($sum->{transport}, 0, "$name: no transport error");
    my @u = grep { $_->{status} == 503 } @$recs;
    ok(@u > 0, "$name: the database outage was seen (" . scalar(@u) . ' answers 503)');
    my @early = grep { $_->{t1} < $t{down0} } @u;
    is(scalar @early, 0, "$name: no 503 before the fault");
    # Generous: machines are noisy; the figures are in the report.
    my $lat = KVLoad::latency(@u);
    ok(($lat->{max} // 0) < ($CT + $RT) * 1000,
        "$name: every 503 came sooner than db_connect_timeout + db_read_timeout ("
            . KVLoad::fmt_latency($lat) . ')');
    my @late = grep { $_->{t0} > $t{up1} + 1.5 && $_->{status} >= 500 } @$recs;
    is(scalar @late, 0, "$name: the same workers serve normally once the database is back")
        or diag join "\n", map { KVLoad::fmt_record($_) } @late[0 .. ($#late > 9 ? 9 : $#late)];
    ok((grep { $_->{t0} > $t{up1} + 1.5 && $_->{status} < 300 } @$recs) > 20,
        "$name: load went on after recovery");
    for my $pool (qw(kvapi write auth)) {
        is_deeply([ $s->worker_pids($pool) ], $pids0{$pool},
            "$name: $pool workers are the same processes");
    }
    my $chk = KVLoad::check_writes($recs, KVLoad::db_state($s, $prefix), $prefix);
    is(scalar @{ $chk->{lost} }, 0, "$name: no acknowledged write lost")
        or diag join "\n", @{ $chk->{lost} };
    is(scalar @{ $chk->{violations} }, 0, "$name: every read and 404/409 fits the record")
        or diag join "\n", grep { defined } @{ $chk->{violations} }[0 .. 9];
    my $first_ok = (sort { $a <=> $b } map { $_->{t1} }
        grep { $_->{t0} > $t{up0} && $_->{status} < 300 } @$recs)[0];
    $report{$name} = sprintf '%s: %d requests sent, %d answered, %d ok, %d failed (503); '
            . 'writes acknowledged %d, unknown %d, lost %d (%d keys, %d exact); '
            . 'database away %.1fs (fault took %.1fs, db_up %.1fs, first success %.2fs after db_up); '
            . '503 latency %s; all latency %s',
        $name, $sum->{sent}, $sum->{sent} - $sum->{transport}, $sum->{ok},
        $sum->{failed}, $chk->{acked}, $chk->{unknown}, scalar @{ $chk->{lost} },
        $chk->{keys}, $chk->{exact}, $t{up1} - $t{down0},
        $t{down1} - $t{down0}, $t{up1} - $t{up0},
        defined $first_ok ? $first_ok - $t{up1} : -1,
        KVLoad::fmt_latency($lat), KVLoad::fmt_latency(KVLoad::latency(@$recs));
    return $recs;
}

# While the database is down: health says so, and a 5xx is traceable
# from the client through nginx's access log to the worker's log.
sub while_down {
    my $res = $s->request(GET => '/api/health');
    is($res->{status}, 503, 'health: 503 while the database is down');
    is($res->{body},
        '{"status":"error","code":"SERVICE_UNAVAILABLE","message":"The service is temporarily unavailable. Please try again later.","data":{"database":"down"}}',
        'health body says the database is down');

    $res = $s->request(GET => '/api/data/f91x', {headers => $s->auth($tokens[0])});
    $s->error_is($res, 'SERVICE_UNAVAILABLE', 'a data request while the database is down');
    is($res->{body}, $SU, 'the client gets the envelope and nothing else');
    my $rid = $res->{headers}{'x-request-id'} // '';
    like($rid, qr/^[0-9a-f]{32}$/, 'the answer carries X-Request-Id');
    # The worker writes its log line before nginx logs the request.
    my (@wlines, @alines);
    for (1 .. 50) {
        @wlines = grep { /\breq=\Q$rid\E\b/ } split /\n/, $s->log_text('kvapi');
        @alines = grep { $_->{request_id} eq $rid } @{ $s->access_log };
        last if @wlines && @alines;
        sleep 0.1;
    }
    is(scalar(grep { /answered 503 SERVICE_UNAVAILABLE/ } @wlines), 1,
        'one worker line says the answer, with req=<id>')
        or diag "worker lines: @wlines";
    is(scalar(grep { / kvapi\[\d+\] (?!error:)/ } @wlines), 0,
        'every worker line of that request is an error line')
        or diag "worker lines: @wlines";
    is(scalar @alines, 1, 'nginx access log has the same id (request_id)');
    is(join(' ', map { $_ // 'null' } @{ $alines[0] // {} }{qw(method path status)}), 'GET /api/data/f91x 503',
        'access log line: request and status');
}

my @all = @{ scenario('db stopped', 'f91s', sub { $s->db_down }, \&while_down) };

# A restart while the workers are idle: each still holds the connection
# that died with the server.  The first statement of a registration is a
# write, which could not be retried safely; the worker must notice the
# dead connection before it uses it, and health must reconnect.
{
    $s->db_down;
    $s->db_up;
    my @st;
    for my $n (1 .. 2 * scalar @{ $pids0{auth} }) {
        my $name = "f91r${n}_" . int(rand 1e6);
        push @st, $s->register(username => $name, email => "$name\@example.com",
            password => 'correct horse 1', full_name => 'After restart')->{status};
    }
    my @h = map { $s->request(GET => '/api/health')->{status} } 1 .. 3 * @{ $pids0{kvapi} };
    is("@st", join(' ', (201) x @st), 'registrations right after an idle restart of the database');
    is("@h", join(' ', (200) x @h), 'health right after an idle restart of the database');
}

push @all, @{ scenario('db crashed', 'f91c', sub { $s->db_kill }) };

# Every worker log line written while the database was away is tagged:
# error lines inside requests carry the request id.
my @untagged = grep { / kvapi\[\d+\] error: (?!req=)/ && !/database connect|connection lost/ }
    split /\n/, $s->log_text('kvapi');
is(scalar @untagged, 0, 'worker error lines about requests carry req=<id>')
    or diag join "\n", @untagged[0 .. ($#untagged > 9 ? 9 : $#untagged)];
# (A token is random text: one may spell "lost" or "socket".)
my @leak = grep { (my $b = $_->{body} // '') =~ s/"(?:access|refresh)_token":"[^"]*"/"token":""/g;
    $b =~ /mysql|mariadb|socket|connect|gone away|lost/i } @all;
is(scalar @leak, 0, 'no database error text in any answer')
    or diag join "\n", map { KVLoad::fmt_record($_) } @leak[0 .. ($#leak > 9 ? 9 : $#leak)];

diag($report{$_}) for sort keys %report;
done_testing;
