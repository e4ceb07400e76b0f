# Metrics (API.md, Operations; issue #17): GET /metrics on the metrics
# listener (metrics_listen), never on the public port, in the Prometheus
# text format that `promtool check metrics` accepts, summing every worker
# of the three pools.  A real Prometheus, started here on a free port with its
# data under the test's directory, scrapes the listener every 250 ms and
# its HTTP API must return exactly the requests this file made; a data
# worker killed with SIGKILL and respawned by multiwatch takes its
# counts with it into the new worker's file, so no total goes backwards.
# docs/alerts.yml passes `promtool check rules` and loads into that
# Prometheus.  Last, the database stops and starts again: one failed
# connect, one reconnect.
use strict;
use warnings;
use Test::More;
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use KVTest qw(json_is poll_until);

my $ROOT = $ENV{KVAPI_SRCDIR} // '.';
my $ALERTS = "$ROOT/docs/alerts.yml";
my $http = HTTP::Tiny->new(timeout => 10);

for my $tool (qw(promtool prometheus)) {
    ok(-x "/usr/bin/$tool", "$tool is installed (script/stack deps --test)")
        or BAIL_OUT("no $tool: run script/stack deps --test");
}

# A MariaDB of our own, stopped at the end.
my $s = KVTest->start(workers => 2, private_db => 1, quota_keys => 1);
$s->allow_log(qr/Child\[\d+\] died, respawn$/,
    qr/Spawning child\[\d+\] failed, next try$/);

# "name{labels}" => value of every sample of a scrape.
sub samples {
    my ($text) = @_;
    my %v;
    for (split /\n/, $text) {
        next if /^#/ || !/\S/;
        my ($k, $n) = /^(\S+(?:\{[^}]*\})?) (\S+)$/ or die "unparsable line: $_\n";
        $v{$k} = $n;
    }
    return \%v;
}

sub scrape {
    my $r = $http->get($s->metrics_url . '/metrics');
    die "scrape: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    return $r;
}

# The kvapi_http_requests_total rows of a scrape, "route method code" => n.
sub requests_of {
    my ($v) = @_;
    my %r;
    for (keys %$v) {
        my ($route, $m, $c) = /^kvapi_http_requests_total\{route="([^"]*)",method="([^"]*)",code="([^"]*)"\}$/
            or next;
        $r{"$route $m $c"} = $v->{$_};
    }
    return \%r;
}

subtest 'the public port has no metrics' => sub {
    for my $path ('/metrics', '/nginx_status') {
        my $r = $s->request(GET => $path);
        $s->error_is($r, 'NOT_FOUND', "GET $path on the public port: 404 JSON");
    }
};

# What the requests below must add up to: "route method code" => count.
my %want;
my $u = $s->new_user('m62');
$want{'/api/register POST 201'}++;
$want{'/api/token POST 200'}++;
my $A = $s->auth($u->{token});

my $r = $s->request(POST => '/api/token', { json => { username => $u->{username}, password => 'wrong password' } });
$s->error_is($r, 'INVALID_CREDENTIALS', 'a wrong password');
$want{'/api/token POST 401'}++;

$r = $s->request(POST => '/api/token', { json => { username => $u->{username}, password => $u->{password} } });
is $r->{status}, 200, 'a second login' or diag $r->{body};
$want{'/api/token POST 200'}++;
my $refresh = $r->{json}{data}{refresh_token};
$r = $s->request(POST => '/api/token', { json => { grant_type => 'refresh_token', refresh_token => $refresh } });
is $r->{status}, 200, 'a refresh' or diag $r->{body};
$want{'/api/token POST 200'}++;
$r = $s->request(POST => '/api/token', { json => { grant_type => 'refresh_token', refresh_token => $refresh } });
$s->error_is($r, 'INVALID_GRANT', 'the consumed refresh token again');
$want{'/api/token POST 401'}++;

$r = $s->request(POST => '/api/data', { headers => $A, json => { key => 'k1', value => 1 } });
is $r->{status}, 201, 'POST /api/data' or diag $r->{body};
$want{'/api/data POST 201'}++;
$s->error_is($s->request(POST => '/api/data', { headers => $A, json => { key => 'k2', value => 2 } }),
    'QUOTA_EXCEEDED', 'a key over quota_keys (1)');
$want{'/api/data POST 507'}++;
for (1 .. 3) {
    $r = $s->request(GET => '/api/data/k1', { headers => $A });
    is $r->{status}, 200, "GET hit $_";
    $want{'/api/data/{key} GET 200'}++;
}
# A client's header is not the metrics listener's FastCGI parameter.
$r = $s->request(GET => '/api/data/k1', { headers => { %$A, 'Kvapi-Metrics' => '1' } });
json_is($r, { status => 'success', data => { key => 'k1', value => 1 } }, 'a Kvapi-Metrics header gets the API\'s answer');
$want{'/api/data/{key} GET 200'}++;
for (1 .. 2) {
    $s->error_is($s->request(GET => "/api/data/missing$_", { headers => $A }), 'KEY_NOT_FOUND', "GET miss $_");
    $want{'/api/data/{key} GET 404'}++;
}
$r = $s->request(HEAD => '/api/data/k1', { headers => $A });
is $r->{status}, 200, 'HEAD';
$want{'/api/data/{key} HEAD 200'}++;
$r = $s->request(OPTIONS => '/api/data/k1', { headers => { Origin => 'http://app.example',
    'Access-Control-Request-Method' => 'PUT' } });
is $r->{status}, 204, 'a preflight';
# Preflights are answered before routing: no route.
$want{'none OPTIONS 204'}++;
$s->error_is($s->request(DELETE => '/api/health'), 'METHOD_NOT_ALLOWED', 'DELETE /api/health');
$want{'/api/health DELETE 405'}++;
$s->error_is($s->request(GET => '/api/nowhere'), 'NOT_FOUND', 'a path of no route');
$want{'none GET 404'}++;

my %counters = (
    'kvapi_logins_total{result="ok"}' => 2,
    'kvapi_logins_total{result="failed"}' => 1,
    'kvapi_logins_total{result="locked"}' => 0,
    'kvapi_logins_total{result="disabled"}' => 0,
    kvapi_sessions_opened_total => 2,
    kvapi_sessions_refreshed_total => 1,
    kvapi_refresh_reuse_total => 1,
    kvapi_quota_refusals_total => 1,
    # register, and the three logins
    kvapi_bcrypt_seconds_count => 4,
    'kvapi_db_errors_total{kind="connect"}' => 0,
    'kvapi_db_errors_total{kind="lost"}' => 0,
    'kvapi_db_errors_total{kind="query"}' => 0,
    kvapi_db_reconnects_total => 0,
    kvapi_worker_crashes_total => 0,
    # two read and two write workers (workers => 2), the bcrypt workers
    # (KVAPI_AUTH_WORKERS, nproc)
    kvapi_worker_starts_total => 2 + 2 + ($ENV{KVAPI_AUTH_WORKERS} // `nproc` + 0),
);
my $before;
subtest 'GET /metrics on the metrics listener' => sub {
    my $res = scrape();
    is $res->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', 'Content-Type';
    my $v = samples($res->{content});
    is_deeply requests_of($v), \%want, 'kvapi_http_requests_total: every request made, by route, method and code';
    is $v->{$_}, $counters{$_}, $_ for sort keys %counters;
    is $v->{kvapi_workers}, $counters{kvapi_worker_starts_total}, 'kvapi_workers: every worker of the three pools';
    my %per_route;
    $per_route{(split / /)[0]} += $want{$_} for keys %want;
    for my $route (sort keys %per_route) {
        is $v->{qq{kvapi_http_request_duration_seconds_count{route="$route"}}}, $per_route{$route},
            "latency histogram of $route counts its requests";
        is $v->{qq{kvapi_http_request_duration_seconds_bucket{route="$route",le="+Inf"}}}, $per_route{$route},
            "and its +Inf bucket";
    }
    ok $v->{kvapi_bcrypt_seconds_sum} > 0, 'bcrypt time is counted';
    my $f = File::Temp->new;
    print $f $res->{content};
    close $f;
    my $out = `promtool check metrics <$f 2>&1`;
    is $?, 0, 'promtool check metrics: exit 0' or diag $out;
    is $out, '', 'and no complaint';
    $before = $v;
};

my $out = `promtool check rules $ALERTS 2>&1`;
is $?, 0, 'promtool check rules docs/alerts.yml' or diag $out;
like $out, qr/SUCCESS: 6 rules found/, 'six rules';

# A Prometheus of our own.
my $pdir = $s->dir . '/prometheus';
mkdir $pdir or die "$pdir: $!";
my $pport = do {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die "port: $!";
    $l->sockport;
};
open my $cf, '>', "$pdir/prometheus.yml" or die $!;
print $cf <<"EOF";
global:
  scrape_interval: 250ms
  scrape_timeout: 200ms
  evaluation_interval: 1s
rule_files: ['$ALERTS']
scrape_configs:
  - job_name: kvapi
    static_configs:
      - targets: ['127.0.0.1:${\ $s->metrics_port }']
EOF
close $cf;
my $ppid = fork // die "fork: $!";
if ($ppid == 0) {
    open STDOUT, '>', "$pdir/prometheus.log" or POSIX::_exit(1);
    open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
    exec('prometheus', "--config.file=$pdir/prometheus.yml", "--storage.tsdb.path=$pdir/data",
        "--web.listen-address=127.0.0.1:$pport") or POSIX::_exit(127);
}
END { if ($ppid) { kill TERM => $ppid; waitpid $ppid, 0 } }
my $API = "http://127.0.0.1:$pport/api/v1";

# The vector of PromQL $q: [{metric}, value] pairs, or undef.
sub query {
    my ($q) = @_;
    my $res = $http->get("$API/query?query=" . join '', map { sprintf '%%%02X', ord } split //, $q);
    return undef unless $res->{success};
    my $j = eval { decode_json($res->{content}) } or return undef;
    return undef unless $j->{status} eq 'success';
    return [ map { [ $_->{metric}, $_->{value}[1] ] } @{ $j->{data}{result} } ];
}

sub prom_requests {
    my $v = query('kvapi_http_requests_total{job="kvapi"}') or return {};
    return { map { ("$_->[0]{route} $_->[0]{method} $_->[0]{code}" => $_->[1]) } @$v };
}

ok(poll_until(60, sub { my $u = query('up{job="kvapi"}'); $u && @$u && $u->[0][1] eq '1' }),
    'Prometheus scrapes the metrics listener (up == 1)')
    or diag `tail -20 $pdir/prometheus.log`;
my $got;
poll_until(30, sub { $got = prom_requests(); keys %$got == keys %want });
is_deeply $got, \%want, 'Prometheus\' API: kvapi_http_requests_total is exactly the requests made';
for my $name (sort keys %counters) {
    my $v = query($name);
    is $v && @$v == 1 ? $v->[0][1] : undef, $counters{$name}, "Prometheus' API: $name";
}
my $rules = decode_json($http->get("$API/rules")->{content});
is_deeply [ sort map { $_->{name} } map { @{ $_->{rules} } } @{ $rules->{data}{groups} } ],
    [ sort qw(KvapiScrapeDown KvapiHigh5xxRatio KvapiDatabaseErrors KvapiSlowRequests
        KvapiWorkerCrashes KvapiRefreshTokenReuse) ], 'Prometheus loaded docs/alerts.yml';
is_deeply [ map { $_->{health} } map { @{ $_->{rules} } } @{ $rules->{data}{groups} } ],
    [ ('ok') x 6 ], 'and evaluates every rule without error'
    or diag explain $rules->{data}{groups};

subtest 'counters survive kill -9 of a worker' => sub {
    my ($victim) = $s->worker_pids('kvapi');
    kill KILL => $victim;
    ok(poll_until(30, sub { my @p = $s->worker_pids('kvapi'); @p == 2 && !grep { $_ == $victim } @p }),
        "killed data worker $victim, and multiwatch started another");
    my $v;
    ok(poll_until(30, sub { $v = samples(scrape()->{content});
            $v->{kvapi_worker_starts_total} == $before->{kvapi_worker_starts_total} + 1 }),
        'the new worker has started counting');
    is $v->{kvapi_worker_crashes_total}, 1, 'kvapi_worker_crashes_total: the killed worker';
    is $v->{kvapi_workers}, $before->{kvapi_workers}, 'kvapi_workers is back';
    is_deeply requests_of($v), \%want, 'every request the dead worker counted is still counted';
    my @back = grep { $v->{$_} < $before->{$_} } grep { !/^kvapi_workers$/ } keys %$before;
    is_deeply \@back, [], 'no series went backwards';
    for (1 .. 2) {
        is $s->request(GET => '/api/data/k1', { headers => $A })->{status}, 200, "GET hit after the kill $_";
        $want{'/api/data/{key} GET 200'}++;
    }
    is_deeply requests_of(samples(scrape()->{content})), \%want, 'and the new requests add to them';
    poll_until(30, sub { $got = prom_requests(); ($got->{'/api/data/{key} GET 200'} // 0) == $want{'/api/data/{key} GET 200'} });
    is_deeply $got, \%want, 'Prometheus\' API has the same';
    my $resets = query('sum(resets(kvapi_http_requests_total{job="kvapi"}[5m]))');
    is $resets && $resets->[0][1], 0, 'Prometheus saw no counter reset';
};

subtest 'database errors and reconnects' => sub {
    $s->db_down;
    $s->error_is($s->request(GET => '/api/data/k1', { headers => $A }), 'SERVICE_UNAVAILABLE',
        'GET with the database down');
    $want{'/api/data/{key} GET 503'}++;
    my $v = samples(scrape()->{content});
    is $v->{'kvapi_db_errors_total{kind="connect"}'}, 1, 'one failed connect';
    is $v->{kvapi_db_reconnects_total}, 0, 'no reconnect yet';
    $s->db_up;
    is $s->request(GET => '/api/data/k1', { headers => $A })->{status}, 200, 'GET with the database back';
    $want{'/api/data/{key} GET 200'}++;
    $v = samples(scrape()->{content});
    is $v->{kvapi_db_reconnects_total}, 1, 'one reconnect';
    is $v->{'kvapi_db_errors_total{kind="connect"}'}, 1, 'no other failed connect';
    is $v->{'kvapi_db_errors_total{kind="lost"}'}, 0, 'no connection lost under a statement';
    is_deeply requests_of($v), \%want, 'the 503 is counted';
};

done_testing;
