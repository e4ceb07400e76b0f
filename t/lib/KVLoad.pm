package KVLoad;

# Load driver for the fault tests (t/9*.t): several forked clients talk
# HTTP/1.1 with keep-alive to one kvapi stack over raw sockets, and every
# request sent and every answer got is written to a per-client log, merged
# by the parent afterwards.  Nothing is retried behind the test's back:
# the one exception is the standard keep-alive race (a reused connection
# that the server closed while idle, so the request got no byte of an
# answer), which is resent once on a new connection and counted
# (retries); a kept connection found closed before sending is replaced
# (reconnect).
#
#   my $load = KVLoad->start(port => $s->port, dir => $dir, clients => 6,
#       run => KVLoad::writer(tokens => [...], prefix => 'w1'));
#   $load->go;                 # barrier: every client starts now
#   ... faults ...
#   $load->stop;               # clients finish the request in hand
#   my $recs = $load->finish;  # [ {client, seq, t0, t1, method, ...}, ... ]
#   my $r = KVLoad::check_writes($recs, KVLoad::db_state($s, 'w1'));
#
# prepare => sub { my ($c, $i) = @_; ... } runs in each client before the
# barrier: $c->prime(METHOD => $path, %opt) sends all of a request but its
# last byte there, and the run sub's $c->request_primed the rest, so that
# the clients' requests really arrive together (t/92).
#
# A client's run sub loops while $c->running (false once stop is called
# or the deadline passes, 60 s by default) and calls $c->request, which
# returns {status, code, body, headers, ms}; status 0 is a transport
# failure (err says which).

use strict;
use warnings;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use KVTest ();    # its error table and dechunk

our @FIELDS = qw(client seq t0 t1 method path op key val status code retries
    err body reconnect ctype);

sub start {
    my ($class, %o) = @_;
    my $self = bless {
        port => $o{port}, dir => $o{dir}, clients => $o{clients} // 4,
        run => $o{run}, prepare => $o{prepare},
        deadline => $o{deadline} // 60,
        timeout => $o{timeout} // 30,
    }, $class;
    die "KVLoad: dir, port and run are required\n"
        unless $self->{dir} && $self->{port} && $self->{run};
    mkdir $self->{dir};
    unlink "$self->{dir}/stop", glob "$self->{dir}/client-*.log";
    pipe(my $r, my $w) or die "pipe: $!";
    for my $i (0 .. $self->{clients} - 1) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $w;
            my $ok = eval { _child($self, $i, $r); 1 };
            if (!$ok) {
                open my $e, '>>', "$self->{dir}/client-$i.err";
                print $e $@ if $e;
            }
            POSIX::_exit($ok ? 0 : 1);
        }
        push @{ $self->{kids} }, $pid;
    }
    close $r;
    $self->{barrier} = $w;
    return $self;
}

sub _child {
    my ($self, $i, $barrier) = @_;
    srand($$ ^ int(time * 1000));
    my $c = KVLoad::Client->new(%$self, id => $i);
    # Before the barrier, e.g. to open the keep-alive connection.
    $self->{prepare}->($c, $i) if $self->{prepare};
    # Block until the parent closes its end: every client starts at once.
    sysread($barrier, my $x, 1);
    close $barrier;
    $c->{end} = time + $self->{deadline};
    $self->{run}->($c, $i);
    $c->finish;
}

# Release the barrier.
sub go {
    my ($self) = @_;
    close $self->{barrier} if $self->{barrier};
    undef $self->{barrier};
    $self->{t_go} = time;
    return $self->{t_go};
}

sub stop {
    my ($self) = @_;
    open my $fh, '>', "$self->{dir}/stop" or die "stop: $!";
    close $fh;
    $self->{t_stop} //= time;
}

# Wait for the clients (killing any still there $grace s after the
# deadline), merge their logs sorted by start time, and return them.
# With $every and $tick, call $tick->() every $every seconds meanwhile.
sub finish {
    my ($self, $grace, $every, $tick) = @_;
    my $next = $every ? time + $every : undef;
    $self->go if $self->{barrier};
    my $limit = $self->{t_go} + $self->{deadline} + ($grace // 40);
    my %left = map { $_ => 1 } @{ $self->{kids} };
    my @failed;
    while (%left) {
        for my $pid (keys %left) {
            my $r = waitpid $pid, POSIX::WNOHANG();
            next unless $r == $pid || $r == -1;
            push @failed, "client pid $pid exit status $?" if $r == $pid && $?;
            delete $left{$pid};
        }
        last unless %left;
        if ($next && time >= $next) {
            $tick->();
            $next += $every;
        }
        if (time > $limit) {
            kill KILL => keys %left;
            push @failed, "client pids " . join(' ', keys %left) . " killed";
            waitpid $_, 0 for keys %left;
            last;
        }
        sleep 0.05;
    }
    for my $f (glob "$self->{dir}/client-*.err") {
        open my $fh, '<', $f or next;
        local $/;
        push @failed, "$f: " . <$fh>;
    }
    $self->{failed} = \@failed;
    my @recs;
    for my $f (glob "$self->{dir}/client-*.log") {
        open my $fh, '<', $f or die "$f: $!";
        while (my $line = <$fh>) {
            chomp $line;
            my @v = map { _unesc($_) } split /\t/, $line, -1;
            my %r;
            @r{@FIELDS} = @v;
            push @recs, \%r;
        }
    }
    @recs = sort { $a->{t0} <=> $b->{t0} } @recs;
    $self->{records} = \@recs;
    return \@recs;
}

# Problems of the clients themselves (a die in a run sub, a kill).
sub client_failures { @{ $_[0]{failed} // [] } }

# A race on stack $s: $clients clients each send the request $req->($i)
# (a list for $c->prime) together.  Two tests: the clients ran cleanly
# and sent one request each.  Returns their records in client order and
# pushes onto @$spreads how close together they went.
my $RACES = 0;
sub race {
    my ($s, $name, $clients, $req, $spreads) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $load = KVLoad->start(port => $s->port, clients => $clients, deadline => 30,
        dir => $s->dir . '/race-' . ++$RACES,
        prepare => sub {
            my ($c, $i) = @_;
            # Woken together, the clients should run at once, even on a
            # busy machine (as root; elsewhere this just fails).
            setpriority(0, 0, -10);
            $c->prime($req->($i));
        },
        run => sub { $_[0]->request_primed });
    $load->go;
    my @recs = sort { $a->{client} <=> $b->{client} } @{ $load->finish };
    Test::More::is_deeply([ $load->client_failures ], [], "$name: clients ran cleanly");
    Test::More::is(scalar @recs, $clients, "$name: $clients requests sent");
    my ($lo, $hi) = (sort { $a <=> $b } map { $_->{t0} } @recs)[0, -1];
    my ($first) = sort { $a <=> $b } map { $_->{t1} } @recs;
    my $before = grep { $_->{t0} < $first } @recs;
    push @$spreads, sprintf '%s: all sent within %.1fms, %d before the first answer',
        $name, ($hi - $lo) * 1000, $before;
    return @recs;
}

# How many records answered each status (and code): {"409 KEY_EXISTS" => 7}.
sub statuses {
    my %c;
    $c{ $_->{status} . ($_->{code} ? " $_->{code}" : '') }++ for @_;
    return \%c;
}

# One test: every error among the records is the exact JSON envelope.
sub envelopes_ok {
    my ($name, @recs) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @bad = grep { $_->{status} >= 400 && $_->{body} ne envelope($_->{code} // 'X') } @recs;
    Test::More::is(scalar @bad, 0, "$name: every error is the exact JSON envelope")
        or Test::More::diag(join "\n", map { fmt_record($_) } @bad);
}

sub _unesc {
    my ($s) = @_;
    return undef if $s eq '\N';
    my %m = (n => "\n", t => "\t", r => "\r", '\\' => '\\');
    $s =~ s/\\([ntr\\])/$m{$1}/g;
    return $s;
}

# Totals: sent, ok (answered below 500), failed (5xx or no answer),
# transport (no answer), retries and reconnects (see the top).
sub summary {
    my ($recs) = @_;
    my %s = (sent => scalar @$recs, ok => 0, failed => 0, transport => 0,
        retries => 0, reconnects => 0);
    for my $r (@$recs) {
        $s{retries} += $r->{retries} // 0;
        $s{reconnects} += $r->{reconnect} // 0;
        if ($r->{status} == 0) { $s{transport}++; $s{failed}++ }
        elsif ($r->{status} >= 500) { $s{failed}++ }
        else { $s{ok}++ }
    }
    return \%s;
}

# Latency percentiles (ms) of a list of records.
sub latency {
    my (@recs) = @_;
    return {n => 0} unless @recs;
    my @ms = sort { $a <=> $b } map { ($_->{t1} - $_->{t0}) * 1000 } @recs;
    my $p = sub { $ms[ int($_[0] * $#ms + 0.5) ] };
    return {n => scalar @ms, p50 => $p->(0.5), p99 => $p->(0.99),
        max => $ms[-1]};
}

sub fmt_latency {
    my ($l) = @_;
    return 'none' unless $l->{n};
    return sprintf 'n=%d p50=%.1fms p99=%.1fms max=%.1fms', @$l{qw(n p50 p99 max)};
}

# The exact JSON error envelope of API.md for a code, as both the worker
# and the nginx error pages print it.
sub envelope {
    my ($code) = @_;
    my $e = $KVTest::ERRORS{$code} or die "envelope: unknown code $code";
    return qq({"status":"error","code":"$code","message":"$e->[1]"});
}

# Records whose answer $allowed->($record) refuses, or that lack the JSON
# content type, or whose error body is not the exact JSON envelope of its
# code.
sub bad_answers {
    my ($recs, $allowed) = @_;
    my @bad;
    for my $r (@$recs) {
        my $ok = $allowed->($r);
        $ok &&= ($r->{ctype} // '') eq 'application/json; charset=utf-8'
            if $r->{status} != 204 && $r->{status} != 304;
        if ($ok && $r->{status} >= 400) {
            $ok = defined $r->{code} && exists $KVTest::ERRORS{ $r->{code} }
                && $r->{body} eq envelope($r->{code})
                && $KVTest::ERRORS{ $r->{code} }[0] == $r->{status};
        }
        push @bad, $r unless $ok;
    }
    return @bad;
}

sub fmt_record {
    my ($r) = @_;
    return sprintf 'client %s #%s %s %s (%s) -> %s %s%s [%.3f..%.3f] %s',
        $r->{client}, $r->{seq}, $r->{method}, $r->{path}, $r->{op} // '',
        $r->{status}, $r->{code} // '', $r->{err} ? " err=$r->{err}" : '',
        $r->{t0}, $r->{t1}, substr($r->{body} // '', 0, 200);
}

# A run sub for writers that own disjoint keys: client i works on keys
# "<prefix>c<i>k<n>" (n < keys) of user tokens->[i % @tokens], creating
# (POST), replacing (PUT), deleting and reading them at random, each write
# with a value unique to it ("<prefix>c<i>s<seq>", padded to pad bytes
# with "-xxx...": see padded).
# With pause => s, a client sleeps that long between requests.
sub writer {
    my (%o) = @_;
    my $nkeys = $o{keys} // 20;
    my $prefix = $o{prefix} // 'w';
    my $pad = $o{pad} // 0;
    my @mix = @{ $o{mix} // [60, 15, 25] };    # PUT, DELETE, GET when present
    return sub {
        my ($c, $i) = @_;
        my $token = $o{tokens}[ $i % @{ $o{tokens} } ];
        my %auth = (Authorization => "Bearer $token");
        my @keys = map { "${prefix}c${i}k$_" } 0 .. $nkeys - 1;
        my %present;
        while ($c->running) {
            my $k = $keys[ rand @keys ];
            my $val = "${prefix}c${i}s" . ($c->{seq} + 1);
            my $full = padded($val, $pad);
            my $res;
            if (!$present{$k}) {
                $res = $c->request(POST => '/api/data', op => 'create',
                    key => $k, val => $val, headers => \%auth,
                    body => qq({"key":"$k","value":"$full"}));
                $present{$k} = 1 if $res->{status} == 201 || $res->{status} == 409;
            } else {
                my $x = rand 100;
                if ($x < $mix[0]) {
                    $res = $c->request(PUT => "/api/data/$k", op => 'update',
                        key => $k, val => $val, headers => \%auth,
                        body => qq({"value":"$full"}));
                    $present{$k} = 0 if $res->{status} == 404;
                } elsif ($x < $mix[0] + $mix[1]) {
                    $res = $c->request(DELETE => "/api/data/$k", op => 'delete',
                        key => $k, headers => \%auth);
                    $present{$k} = 0 if $res->{status} == 200 || $res->{status} == 404;
                    # Unknown outcome: POST next; a 409 says it is there.
                    $present{$k} = 0 if $res->{status} == 0 || $res->{status} >= 500;
                } else {
                    $res = $c->request(GET => "/api/data/$k", op => 'read',
                        key => $k, headers => \%auth);
                    $present{$k} = 0 if $res->{status} == 404;
                }
            }
            sleep $o{pause} if $o{pause};
            # Nobody listening (a stop test): do not spin.
            sleep 0.05 if $res->{status} == 0 && ($res->{err} // '') =~ /^connect/;
        }
    };
}

# A value for the record: its id, padded with "-xxx..." to $len bytes.
# The log keeps the id only; vid() takes it back from a stored value.
sub padded {
    my ($id, $len) = @_;
    return $id unless $len && $len > length($id) + 1;
    return $id . '-' . ('x' x ($len - length($id) - 1));
}

sub vid { my ($v) = @_; defined $v ? $v =~ s/-x*\z//r : $v }

# Allowed answers of writer() requests: the success or expected 4xx of
# each operation, or 503 SERVICE_UNAVAILABLE (also nginx's 502/504).
sub writer_allowed {
    my ($r) = @_;
    my %ok = (create => [201, 409], update => [200, 404],
        delete => [200, 404], read => [200, 404]);
    my $list = $ok{ $r->{op} // '' } or return 0;
    return 1 if grep { $r->{status} == $_ } @$list;
    return $r->{status} == 503 && ($r->{code} // '') eq 'SERVICE_UNAVAILABLE';
}

# The database's state of the keys starting with $prefix (all users):
# key => value (the stored JSON string, decoded).
sub db_state {
    my ($s, $prefix) = @_;
    my %db;
    for my $row (@{ $s->sql(
        "SELECT k, v FROM data WHERE k LIKE '$prefix%'") })
    {
        my $v = eval { JSON::PP->new->allow_nonref->decode($row->[1]) }
            // "undecodable:$row->[1]";
        $db{ $row->[0] } = vid($v);
    }
    return \%db;
}

# Check the database against what writer() clients were told.  Per key,
# in request order (one client owns a key, so its requests are
# sequential): a write answered 2xx makes its state (value or absent) the
# only one possible; a write without a definite answer (5xx, transport)
# adds its state as possible; reads and 404/409 answers must match one of
# the possible states.  At the end the database must hold one of them.
# Returns {keys, acked (writes answered 2xx), unknown (writes without a
# definite answer), exact (keys with one possible final state), lost
# (descriptions of keys whose database state was never possible),
# violations (answers contradicting the record)}.
sub check_writes {
    my ($recs, $db, $prefix) = @_;
    my $ABSENT = "\0absent";
    my (%cand, %last);
    my %r = (keys => 0, acked => 0, unknown => 0, exact => 0, lost => [],
        violations => []);
    for my $rec (@$recs) {
        my $k = $rec->{key};
        next unless defined $k
            && ($rec->{op} // '') =~ /\A(?:create|update|delete|read)\z/;
        next if defined $prefix && index($k, $prefix) != 0;
        my $c = $cand{$k} //= {$ABSENT => 1};
        my $st = $rec->{status};
        my $definite = $st > 0 && $st < 500;
        my $new = $rec->{op} eq 'create' || $rec->{op} eq 'update'
            ? $rec->{val} : $ABSENT;
        my $write = $rec->{op} ne 'read';
        my $success = $st >= 200 && $st < 300;
        my $show = sub {
            push @{ $r{violations} }, "$_[0]: " . fmt_record($rec)
                . ' possible: ' . join(', ', map { $_ eq $ABSENT ? '(absent)' : $_ } sort keys %$c);
        };
        if ($write && $success) {
            %$c = ($new => 1);
            $r{acked}++;
            $last{$k} = $rec;
        } elsif ($write && !$definite) {
            $c->{$new} = 1;
            $r{unknown}++;
        } elsif ($rec->{op} eq 'read' && $st == 200) {
            # The id: the body may be cut in the log (long values).
            my ($v) = ($rec->{body} // '') =~ /"value":"([^"\\-]*)/;
            $show->('read a value never possible')
                unless defined $v && $c->{$v};
        } elsif ($st == 404) {
            $show->('404 for a key that must exist') unless $c->{$ABSENT};
        } elsif ($st == 409) {
            $show->('409 for a key that cannot exist')
                unless grep { $_ ne $ABSENT } keys %$c;
        }
    }
    for my $k (sort keys %cand) {
        $r{keys}++;
        my $c = $cand{$k};
        $r{exact}++ if keys %$c == 1;
        my $got = exists $db->{$k} ? $db->{$k} : $ABSENT;
        next if $c->{$got};
        push @{ $r{lost} }, sprintf 'key %s: database has %s, possible: %s; last acknowledged: %s',
            $k, $got eq $ABSENT ? '(absent)' : $got,
            join(', ', map { $_ eq $ABSENT ? '(absent)' : $_ } sort keys %$c),
            $last{$k} ? fmt_record($last{$k}) : 'none';
    }
    return \%r;
}

# Resident memory (kB) and open file descriptors of a process.
sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return undef;
}

sub fd_count {
    my ($pid) = @_;
    opendir my $d, "/proc/$pid/fd" or return undef;
    return scalar grep { !/^\./ } readdir $d;
}

package KVLoad::Client;

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    my $self = bless {%o, seq => 0, end => time + $o{deadline}}, $class;
    open $self->{log}, '>', "$o{dir}/client-$o{id}.log"
        or die "client log: $!";
    $self->{stopfile} = "$o{dir}/stop";
    return $self;
}

sub running {
    my ($self) = @_;
    return !-e $self->{stopfile} && time < $self->{end};
}

sub finish {
    my ($self) = @_;
    CORE::close $self->{sock} if $self->{sock};
    undef $self->{sock};
    CORE::close $self->{log} if $self->{log};
    undef $self->{log};
}

sub _esc {
    my ($s) = @_;
    return '\N' unless defined $s;
    $s =~ s/([\\\t\n\r])/$1 eq "\t" ? '\t' : $1 eq "\n" ? '\n' : $1 eq "\r" ? '\r' : '\\\\'/ge;
    return $s;
}

# One request; opt: body (bytes), ctype (default application/json when
# there is a body), headers {}, and op, key, val for the log.
sub request {
    my ($self, $method, $path, %opt) = @_;
    my $req = _build($method, $path, %opt);
    return $self->_request($method, $path, \%opt, $req, 0);
}

# For races: send all of a request but its last byte now (opening the
# connection), and the rest with request_primed, after the barrier: a
# client then needs one write to start, so the requests really arrive
# together.
sub prime {
    my ($self, $method, $path, %opt) = @_;
    my $req = _build($method, $path, %opt);
    local $SIG{PIPE} = 'IGNORE';
    my $s = $self->{sock} // $self->_connect or die "prime: connect: $!";
    my $n = syswrite($s, $req, length($req) - 1);
    die "prime: write: $!" unless defined $n && $n == length($req) - 1;
    $self->{primed} = [$method, $path, \%opt, $req];
}

sub request_primed {
    my ($self) = @_;
    my $p = delete $self->{primed} or die "request_primed: nothing primed";
    return $self->_request(@$p, length($p->[3]) - 1);
}

sub _build {
    my ($method, $path, %opt) = @_;
    my $body = $opt{body};
    my $head = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kvload\r\n";
    my %h = %{ $opt{headers} // {} };
    $h{'Content-Type'} //= 'application/json' if defined $body;
    $head .= "$_: $h{$_}\r\n" for sort keys %h;
    $head .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    return $head . "\r\n" . ($body // '');
}

# Send $req (from byte $sent on: the rest went before, see prime), read
# the answer, log both.
sub _request {
    my ($self, $method, $path, $opt, $req, $sent) = @_;
    my $seq = ++$self->{seq};
    $self->{reconnected} = 0;
    my $t0 = time;
    my ($res, $retries) = (undef, 0);
    for my $attempt (1, 2) {
        my $reused = $self->{sock} ? 1 : 0;
        $res = $self->_exchange($req, $method eq 'HEAD', $attempt == 1 ? $sent : 0);
        last unless $res->{stale} && $reused && $attempt == 1;
        $retries++;
    }
    my $t1 = time;
    $res->{ms} = ($t1 - $t0) * 1000;
    ($res->{code}) = ($res->{body} // '') =~ /"code":"([A-Z_]+)"/
        if ($res->{status} // 0) >= 300;
    my @v = ($self->{id}, $seq, sprintf('%.6f', $t0), sprintf('%.6f', $t1),
        $method, $path, $opt->{op}, $opt->{key}, $opt->{val}, $res->{status},
        $res->{code}, $retries, $res->{err},
        defined $res->{body} && length $res->{body} > 2000
            ? substr($res->{body}, 0, 2000) : $res->{body},
        $self->{reconnected}, $res->{headers}{'content-type'});
    print { $self->{log} } join("\t", map { _esc($_) } @v), "\n";
    return $res;
}

sub _connect {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
        or return;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;
    $self->{sock} = $s;
    $self->{buf} = '';
    return $s;
}

sub _drop {
    my ($self) = @_;
    CORE::close $self->{sock} if $self->{sock};
    undef $self->{sock};
    $self->{buf} = '';
}

# Send one request on the kept connection (or a new one) and read the
# answer.  {stale => 1}: the connection was closed before any byte came
# back (on a reused connection, the keep-alive race).
sub _exchange {
    my ($self, $req, $head_only, $off) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $s = $self->{sock};
    # A kept connection that is readable before we send was closed by
    # the server (or holds garbage): start afresh.
    if ($s && !$off && IO::Select->new($s)->can_read(0)) {
        $self->_drop;
        undef $s;
        $self->{reconnected} = 1;
    }
    $s //= $self->_connect
        or return {status => 0, err => "connect: $!"};
    $off //= 0;
    while ($off < length $req) {
        my $n = syswrite($s, $req, length($req) - $off, $off);
        if (!defined $n) {
            my $e = "write: $!";
            $self->_drop;
            return {status => 0, err => $e, stale => 1};
        }
        $off += $n;
    }
    my $buf = '';
    my $sel = IO::Select->new($s);
    my ($status, %h, $need);
    while (1) {
        if (!defined $status) {
            # Interim 1xx answers come before the real one.
            while ((my $i = index $buf, "\r\n\r\n") >= 0) {
                my $head = substr $buf, 0, $i;
                ($status) = $head =~ m{\AHTTP/1\.[01] (\d{3})};
                if (!defined $status) {
                    $self->_drop;
                    return {status => 0, err => 'bad status line', partial => $head};
                }
                substr($buf, 0, $i + 4) = '';
                if ($status < 200) {
                    undef $status;
                    next;
                }
                for (split /\r\n/, $head) {
                    my ($k, $v) = /^([^:\s]+):[ \t]*(.*?)[ \t]*$/ or next;
                    $h{ lc $k } = $v;
                }
                if ($head_only || $status == 204 || $status == 304) {
                    $need = 0;
                } elsif (defined $h{'content-length'}) {
                    $need = $h{'content-length'};
                } elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
                    $need = -1;
                }    # else: until the server closes
                last;
            }
        }
        if (defined $status && defined $need) {
            last if $need >= 0 && length($buf) >= $need;
            last if $need < 0 && $buf =~ /(?:^|\r\n)0\r\n\r\n\z/;
        }
        if (!$sel->can_read($self->{timeout})) {
            $self->_drop;
            return {status => 0, err => 'timeout', partial => $buf};
        }
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!$n) {
            my $e = defined $n ? 'eof' : "read: $!";
            $self->_drop;
            # Whole body when the server closes to end it.
            return {status => $status + 0, headers => \%h, body => $buf}
                if defined $status && !defined $need && defined $n;
            return {status => 0, err => $e,
                stale => length($buf) == 0 && !defined $status,
                partial => $buf};
        }
    }
    my $body = defined $need && $need >= 0 ? substr($buf, 0, $need) : $buf;
    $body = KVTest::dechunk($buf) if defined $need && $need < 0;
    $self->_drop if ($h{connection} // '') =~ /close/i;
    return {status => $status + 0, headers => \%h, body => $body};
}

1;
