# Deployment: every setting is documented with its default, an invalid
# config stops the worker before it serves, the systemd units verify and
# are sandboxed, the man pages and the installed nginx site are sound.
#
# With KVAPI_TEST_DEB=kvapi_*.deb (script/test sets it after building the
# package), as root: install the package system-wide, start what it
# installed the way its units would (spawn-fcgi + multiwatch as the user
# kvapi, the installed config and nginx site, a private MariaDB: no systemd
# here), do a register/token/data round trip through nginx, reinstall it as
# an upgrade, then purge it and check that nothing is left behind.
use strict;
use warnings;
use Cwd qw(abs_path);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;

my $SRCDIR = $ENV{KVAPI_SRCDIR} // abs_path(dirname(__FILE__) . '/..');
my $BUILDDIR = $ENV{KVAPI_BUILDDIR} // $SRCDIR;
my $KVAPI = "$BUILDDIR/src/kvapi";
-x $KVAPI or plan skip_all => "$KVAPI is not built (make)";
my $tmp = tempdir('kvd-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{KVAPI_TEST_KEEP});

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $text, $mode) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $text;
    close $fh or die "$f: $!";
    chmod $mode // 0600, $f or die "chmod $f: $!";
    return $f;
}

# Run a command; (exit status, stdout and stderr together).
sub run {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        open STDIN, '<', '/dev/null' or POSIX::_exit(127);
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# Every tool this file uses is installed by script/stack deps --test, so
# every machine takes the same path through it: a missing one fails.
sub need {
    my ($tool) = @_;
    return 1 if grep { -x "$_/$tool" } split /:/, $ENV{PATH};
    fail("$tool is installed (script/stack deps --test installs it)");
    return 0;
}

# The settings: src/config.c's keys table and defaults, the sample config,
# and kvapi(8) must name the same keys with the same defaults.
subtest 'every setting is documented with its default' => sub {
    my $c = slurp("$SRCDIR/src/config.c");
    my ($table) = $c =~ /\bkeys\[\] = \{(.*?)\n\};/s or die 'no keys table in config.c';
    # Each entry: {"name", ... K_TYPE ..., env}, env 0 when the
    # environment may not set it.
    my (%type, @noenv);
    while ($table =~ /\{"(\w+)",([^{}]*)\}/g) {
        my ($k, $rest) = ($1, $2);
        ($type{$k}) = $rest =~ /\bK_(\w+)/ or die "config.c: no type for $k";
        push @noenv, $k if $rest =~ /,\s*0\s*$/;
    }
    my ($body) = $c =~ /\nset_defaults\(void\)\n\{(.*?)\n\}/s or die 'no set_defaults';
    my %c_default;
    while ($body =~ /cfg\.(\w+)\s*=\s*(.+?);/g) {
        my ($k, $v) = ($1, $2);
        if ($v =~ /^strdup\("(.*)"\)$/) { $v = $1 }
        elsif ($v eq 'NULL') { $v = undef }
        elsif ($v =~ /^LOG_(\w+?)_$/) { $v = lc $1 }
        elsif ($v =~ /^[\d\s+*()<-]+$/) { $v = eval $v }    ## no critic
        else { die "set_defaults: cannot read $k = $v" }
        $c_default{$k} = $v;
    }
    # 0 is the client library's port (3306).
    $c_default{db_port} = undef if ($c_default{db_port} // '') eq '0';

    my (%sample, %man);
    for (split /\n/, slurp("$SRCDIR/conf/kvapi.conf.sample")) {
        $sample{$2} = $1 ? undef : $3 if /^(#?)([a-z_]+) =\s*(.*?)\s*$/;
    }
    for (split /\n/, slurp("$BUILDDIR/man/kvapi.8")) {
        $man{$1} = $2 eq 'none' ? undef : $2 if /^\.It Cm ([a-z_]+) No \((.*?)\)$/;
    }
    my @keys = sort keys %type;
    ok(scalar @keys >= 18, scalar(@keys) . ' keys in config.c');
    is_deeply([sort keys %sample], \@keys, 'kvapi.conf.sample names every key, and no other');
    is_deeply([sort keys %man], \@keys, 'kvapi(8) names every key, and no other');
    for my $k (@keys) {
        is($sample{$k}, $man{$k}, "$k: the same default in the sample and kvapi(8)");
        is($sample{$k}, $c_default{$k}, "$k: the sample's default is config.c's")
            unless $type{$k} eq 'NGINX';
    }
    is_deeply(\@noenv, ['db_password'], 'db_password alone is not read from the environment');

    my ($rc, $out) = run($KVAPI, '-c', "$SRCDIR/conf/kvapi.conf.sample");
    is($out, "kvapi: fd 0 is not a FastCGI socket; run me under spawn-fcgi (see --help)\n",
        'the sample is a valid config');
};

# A FastCGI record (version 1, request id 1, no padding).
sub fcgi_record {
    my ($type, $content) = @_;
    return pack('CCnnCx', 1, $type, 1, length $content, 0) . $content;
}

# The whole FastCGI request a responder gets from nginx for $method $uri,
# no body.
sub fcgi_request {
    my ($method, $uri) = @_;
    my $params = join '', map { pack('CC', length $_->[0], length $_->[1]) . $_->[0] . $_->[1] }
        [ REQUEST_METHOD => $method ], [ REQUEST_URI => $uri ], [ PATH_INFO => $uri ],
        [ SERVER_PROTOCOL => 'HTTP/1.1' ];
    return fcgi_record(1, pack('nCx5', 1, 0)) . fcgi_record(4, $params) . fcgi_record(4, '')
        . fcgi_record(5, '');
}

# The STDOUT of FastCGI answer bytes, and whether END_REQUEST came.
sub fcgi_answer {
    my ($bytes) = @_;
    my ($out, $end) = ('', 0);
    while (length $bytes >= 8) {
        my (undef, $type, undef, $len, $pad) = unpack 'CCnnC', $bytes;
        last if length $bytes < 8 + $len + $pad;
        $out .= substr($bytes, 8, $len) if $type == 6;
        $end = 1 if $type == 3;
        substr($bytes, 0, 8 + $len + $pad) = '';
    }
    return ($out, $end);
}

# Start a worker on config text $text (file mode $mode) with fd 0 a
# listening socket, as spawn-fcgi would: (exit status, stderr), or
# 'serving' once it has answered a FastCGI request (GET /api/nope: the
# router's 404, no database needed).  Either is waited for, under a
# deadline, rather than guessed from a worker still running after a while.
sub worker {
    my ($text, %o) = @_;
    my $file = spew("$tmp/w.conf", $text, $o{mode});
    my $sock = "$tmp/w.sock";
    unlink $sock;
    my $l = IO::Socket::UNIX->new(Local => $sock, Listen => 5) or die "$sock: $!";
    # Connected before the worker starts: the connection waits in the
    # socket's backlog until the worker accepts it.  (Connected after, it
    # was refused whenever the worker had already refused its config and
    # exited, taking the listening socket with it.)
    local $SIG{PIPE} = 'IGNORE';
    my $c = IO::Socket::UNIX->new(Peer => $sock) or die "connect $sock: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $c;
        delete @ENV{ grep { /^KVAPI_/ } keys %ENV };
        %ENV = (%ENV, %{ $o{env} // {} });
        open STDIN, '<&', $l or POSIX::_exit(127);
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$tmp/w.err";
        exec $KVAPI, @{ $o{args} // ['-c', $file] } or POSIX::_exit(127);
    }
    close $l;
    # A worker that exits instead of accepting takes the socket with it,
    # and the connection ends unanswered.
    binmode $c;
    my $req = fcgi_request(GET => '/api/nope');
    # A worker that refused its config may be gone already (EPIPE): its
    # exit status below is the answer.
    my $n = syswrite($c, $req);
    die "write $sock: $!" unless ($n // 0) == length $req || $!{EPIPE} || $!{ECONNRESET};
    my ($bytes, $open, $sel) = ('', 1, IO::Select->new($c));
    my $end = time + 30;
    while (time < $end) {
        return ($? >> 8, slurp("$tmp/w.err")) if waitpid($pid, WNOHANG) == $pid;
        if ($open && $sel->can_read(0.05)) {
            my $n = sysread($c, $bytes, 65536, length $bytes);
            $open = 0 unless $n;
            my ($out, $done) = fcgi_answer($bytes);
            if ($done && $out =~ /\AStatus: 404\b/) {
                kill TERM => $pid;
                waitpid $pid, 0;
                return ('serving', slurp("$tmp/w.err"));
            }
        } elsif (!$open) {
            select undef, undef, undef, 0.05;
        }
    }
    kill KILL => $pid;
    waitpid $pid, 0;
    return ('neither answered nor exited within 30 s', slurp("$tmp/w.err"));
}

subtest 'an invalid config stops the worker before it serves' => sub {
    my $f = "$tmp/w.conf";
    my $ok = "db_socket = $tmp/no.sock\nlog_level = error\n";
    is((worker($ok))[0], 'serving', 'a valid config: the worker serves');
    is_deeply([worker("$ok# a comment\n\ncolour = blue\n")],
        [1, "kvapi: $f:5: unknown setting 'colour'\n"], 'an unknown key');
    is_deeply([worker("bcrypt_cost = 3\n")],
        [1, "kvapi: $f:1: invalid value for bcrypt_cost (an integer from 4 to 31)\n"],
        'a value out of range');
    is_deeply([worker("token_lifetime = 1h\n")],
        [1, "kvapi: $f:1: invalid value for token_lifetime (an integer from 1 to 315360000)\n"],
        'a value that is not a number');
    is_deeply([worker("log_level = loud\n")],
        [1, "kvapi: $f:1: invalid value for log_level (error, warn, info or debug)\n"],
        'a bad log level');
    is_deeply([worker("db_name kvapi\n")], [1, "kvapi: $f:1: expected key = value\n"],
        'a line without =');
    my $group = "kvapi: $f:3: db_password is set but the file is readable by group or others"
        . " (chmod 600 it, or use db_option_file)\n";
    is_deeply([worker("${ok}db_password = secret\n", mode => 0640)], [1, $group],
        'a password in a group-readable file');
    is_deeply([worker("${ok}db_password = secret\n", mode => 0604)], [1, $group],
        'a password in a world-readable file');
    is((worker("${ok}db_password = secret\n", mode => 0600))[0], 'serving',
        'a password in a private file is fine');
    is((worker("${ok}db_password = secret\n", mode => 0400))[0], 'serving', 'so is mode 0400');
    is_deeply([worker("value_max = 2000000\n")],
        [1, "kvapi: body_max (1114112) must be at least value_max (2000000)\n"],
        'body_max below value_max');
    is_deeply([worker($ok, env => {KVAPI_BCRYPT_COST => 40})],
        [1, "kvapi: environment KVAPI_BCRYPT_COST: invalid value for bcrypt_cost (an integer from 4 to 31)\n"],
        'a bad value in the environment');
    is_deeply([worker($ok, env => {KVAPI_DB_PASSWORD => 'x'})],
        [1, "kvapi: KVAPI_DB_PASSWORD is not read from the environment; put it in the config file or a MySQL option file\n"],
        'a password in the environment');
    is_deeply([worker("log_level = debug\n", env => {KVAPI_LOG_LEVEL => 'loud'})],
        [1, "kvapi: environment KVAPI_LOG_LEVEL: invalid value for log_level (error, warn, info or debug)\n"],
        'the environment overrides the file');
    is_deeply([worker($ok, args => ['-c', "$tmp/missing.conf"])],
        [1, "kvapi: $tmp/missing.conf: No such file or directory\n"], 'a missing file');
    is((worker($ok, args => ['-x']))[0], 2, 'a bad command line: exit 2');
};

# A unit as systemd would run instance $inst of it: the template and its
# drop-ins (in that order), %i, Environment= and ${VAR} in ExecStart.
sub unit {
    my ($dir, $inst) = @_;
    my (%u, %env);
    for my $file ("$dir/kvapi\@.service", sort glob "$dir/kvapi\@$inst.service.d/*.conf") {
        for (split /\n/, slurp($file)) {
            next if /^\s*(#|;|\[|$)/;
            my ($k, $v) = /^(\w+)=(.*)$/ or die "$file: $_";
            $v =~ s/%i/$inst/g;
            if ($k eq 'Environment') {
                %env = () if $v eq '';
                $env{$1} = $2 while $v =~ /(\w+)=(\S*)/g;
            } else {
                push @{ $u{$k} }, $v;
            }
        }
    }
    $u{$_} = $u{$_}[-1] for grep { !/^SystemCallFilter$/ } keys %u;
    $u{env} = \%env;
    # "${VAR}", alone or in a word, is one word.
    $u{argv} = [map { s/\$\{(\w+)\}/$env{$1} \/\/ die "unset \${$1}"/ger }
        split ' ', $u{ExecStart}];
    return \%u;
}

subtest 'the systemd units' => sub {
    return unless need('systemd-analyze');
    my $dir = "$tmp/units";
    mkdir $dir;
    system('cp', "$BUILDDIR/systemd/kvapi.service", "$BUILDDIR/systemd/kvapi\@.service", $dir) == 0
        or die 'cp';
    system('cp', '-r', glob("$SRCDIR/systemd/kvapi\@*.service.d"), $dir) == 0 or die 'cp';
    my %u = map { $_ => unit($dir, $_) } qw(data write auth);
    like(join(' ', @{ $u{data}{argv} }),
        qr{^\S*/spawn-fcgi -n -s /run/kvapi/kvapi\.sock -M 0660 -- \S*/multiwatch -f 6 -- /\S+/sbin/kvapi -c /\S+/kvapi/kvapi\.conf$},
        'kvapi@data: 6 workers on /run/kvapi/kvapi.sock');
    like(join(' ', @{ $u{write}{argv} }), qr{ -s /run/kvapi/write\.sock .* -f 16 -- },
        'kvapi@write: 16 workers on /run/kvapi/write.sock');
    like(join(' ', @{ $u{auth}{argv} }), qr{ -s /run/kvapi/auth\.sock .* -f 2 -- },
        'kvapi@auth: 2 workers on /run/kvapi/auth.sock');
    is($u{auth}{Nice}, 10, 'kvapi@auth is niced');
    is($u{data}{Nice}, undef, 'kvapi@data is not');
    is($u{write}{Nice}, undef, 'nor is kvapi@write');
    is("$u{data}{User}:$u{data}{Group}", 'kvapi:www-data', 'user kvapi, group www-data');
    is($u{data}{CapabilityBoundingSet}, '', 'no capabilities');
    is($u{data}{ProtectSystem}, 'strict', 'ProtectSystem=strict');

    # The site passes to the sockets the pools bind (by name, or by the
    # map that picks the read or the write pool).
    my $site = slurp("$BUILDDIR/nginx/kvapi");
    my %pass = map { $_ => 1 } $site =~ /^\s*(?:fastcgi_pass|GET|HEAD|OPTIONS|default) unix:(\S+);/mg;
    is_deeply([sort keys %pass], ['/run/kvapi/auth.sock', '/run/kvapi/kvapi.sock', '/run/kvapi/write.sock'],
        'the site passes to the three sockets');

    {
        ok(-x $u{data}{argv}[0] && grep({ m{^/\S*/multiwatch$} && -x } @{ $u{data}{argv} }),
            'the units run the installed spawn-fcgi and multiwatch');
        my ($rc, $out) = run('systemd-analyze', 'verify', '--man=no',
            map { "$dir/$_" } qw(kvapi.service kvapi@data.service kvapi@write.service kvapi@auth.service));
        is($rc, 0, 'systemd-analyze verify succeeds');
        is($out, '', 'and has nothing to say') or diag $out;
        ($rc, $out) = run('systemd-analyze', 'security', '--offline=yes', '--threshold=20',
            "$dir/kvapi\@data.service");
        is($rc, 0, 'systemd-analyze security: exposure at most 2.0')
            or diag join "\n", grep { /^✗|Overall/ } split /\n/, $out;
    }
};

subtest 'the man pages' => sub {
    for my $page (qw(kvapi.8 kvapi-migrate.8 kvapi-admin.8)) {
        my $f = "$BUILDDIR/man/$page";
        unlike(slurp($f), qr/\@[a-z]+\@/, "$page: no placeholder left");
        # Both formatters a reader may have: mandoc's lint and groff with
        # every warning on (line breaking included).
        need('mandoc') && need('groff') or next;
        my ($rc, $out) = run('mandoc', '-Tlint', '-W', 'warning', $f);
        is("$rc $out", '0 ', "$page: mandoc -Tlint has nothing to say") or diag $out;
        ($rc, $out) = run('groff', '-mandoc', '-ww', '-z', $f);
        is("$rc $out", '0 ', "$page: groff -ww has nothing to say") or diag $out;
    }
};

subtest 'the installed nginx site' => sub {
    my $site = slurp("$BUILDDIR/nginx/kvapi");
    my @left = grep { !/^\s*#/ && /\@[A-Z_]+\@/ } split /\n/, $site;
    is_deeply(\@left, [], 'no placeholder left outside comments');
    return unless need('nginx');
    ok(-r '/etc/nginx/fastcgi_params', "nginx's fastcgi_params is there");
    (my $copy = $site) =~ s{access_log /\S+}{access_log $tmp/access.log};
    spew("$tmp/site.conf", $copy, 0644);
    spew("$tmp/nginx.conf", "pid $tmp/nginx.pid;\nerror_log $tmp/error.log;\n"
        . "events {}\nhttp {\n    include $tmp/site.conf;\n}\n", 0644);
    my ($rc, $out) = run('nginx', '-t', '-q', '-p', "$tmp/", '-c', "$tmp/nginx.conf");
    is($rc, 0, 'nginx -t accepts it') or diag $out;
};

subtest 'one version everywhere' => sub {
    my ($rc, $v) = run($KVAPI, '--version');
    my ($version) = $v =~ /^kvapi (\S+)$/m or die "kvapi --version: $v";
    my ($deb) = slurp("$SRCDIR/debian/changelog") =~ /^kvapi \(([^)-]+)-\d+\)/;
    is($deb, $version, "debian/changelog's upstream version is $version");
    ($rc, $v) = run("$BUILDDIR/script/kvapi-migrate", '--version');
    is($v, "kvapi-migrate $version\n", 'kvapi-migrate --version');
    ($rc, $v) = run("$BUILDDIR/src/kvapi-admin", '--version');
    is($v, "kvapi-admin $version\n", 'kvapi-admin --version');
};

package_test($ENV{KVAPI_TEST_DEB}) if $ENV{KVAPI_TEST_DEB};
done_testing;

# The rest is the package test.

# What the package test started or changed, undone in reverse order at the
# end, even when a test dies; each at most once.
my @CLEANUP;
sub on_cleanup {
    my ($code) = @_;
    my $done;
    my $once = sub { $done++ or $code->() };
    push @CLEANUP, $once;
    return $once;
}
END {
    local $?;
    while (my $c = pop @CLEANUP) {
        eval { $c->(); 1 } or diag "cleanup: $@";
    }
}

sub children {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = eval { slurp($stat) } // next;
        my ($pp) = $s =~ /\) \S (\d+)/ or next;
        push @kids, $stat =~ m{(\d+)} if $pp == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

sub proc_status {
    my ($pid) = @_;
    my %s = (slurp("/proc/$pid/status") // '') =~ /^(\w+):\s*(.*)$/mg;
    ($s{nice}) = (slurp("/proc/$pid/stat") =~ /\) (?:\S+ ){16}(-?\d+)/);
    return \%s;
}

sub wait_for {
    my ($what, $secs, $cond) = @_;
    for (1 .. $secs * 10) {
        return 1 if $cond->();
        select undef, undef, undef, 0.1;
    }
    diag "timed out waiting for $what";
    return 0;
}

# The system calls systemd's SystemCallFilter= lines allow.
sub syscall_allowed {
    my (@filters) = @_;
    my (%group, $cur);
    for (split /\n/, (run('systemd-analyze', 'syscall-filter'))[1]) {
        if (/^(\@[\w-]+)$/) { $cur = $1 }
        elsif ($cur && /^\s+([\@\w-]+)\s*$/) { push @{ $group{$cur} }, $1 }
    }
    my $expand;
    $expand = sub {
        my ($n, $seen) = @_;
        return $n unless $n =~ /^\@/;
        return () if $seen->{$n}++;
        return map { $expand->($_, $seen) } @{ $group{$n} // die "unknown group $n" };
    };
    my %ok;
    for my $f (@filters) {
        my $deny = $f =~ s/^~//;
        for my $sc (map { $expand->($_, {}) } split ' ', $f) {
            if ($deny) { delete $ok{$sc} } else { $ok{$sc} = 1 }
        }
    }
    return \%ok;
}

sub package_test {
    my ($deb) = @_;
    $deb = abs_path($deb);
    my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);
    my $json = JSON::PP->new->utf8->canonical;
    my $dir = tempdir('kvdeb-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{KVAPI_TEST_KEEP});
    chmod 0755, $dir;    # the workers reach MariaDB's socket in here
    my $stack = "$SRCDIR/script/stack";
    my $sock = "$dir/db/run/mysqld.sock";
    local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
    # The container's way to point the installed config elsewhere: the
    # units would read it from /etc/default/kvapi.
    local $ENV{KVAPI_DB_SOCKET} = $sock;

    if ($>) {
        subtest 'the Debian package' => sub { plan skip_all => 'it installs system-wide: run as root' };
        return;
    }
    # Ctrl-C or a kill still runs the END blocks, which purge the package.
    $SIG{$_} = sub { die "killed by SIG$_[0]\n" } for qw(INT TERM HUP);
    # One package test per machine at a time.
    open my $lock, '>', '/run/lock/kvapi-package-test.lock' or die "lock: $!";
    flock($lock, LOCK_EX | LOCK_NB) or do {
        diag 'waiting for another package test';
        flock($lock, LOCK_EX) or die "flock: $!";
    };
    my ($rc, $out) = run('dpkg-query', '-W', '-f=${db:Status-Status}', 'kvapi');
    if ($out eq 'installed') {
        fail('kvapi is installed on this machine already: the package test leaves it alone');
        return;
    }
    my $had_user = defined getpwnam('kvapi');
    my $had_run = -e '/run/kvapi';

    my (@pools, $stop_db, $stop_pools, $stop_nginx);
    on_cleanup(sub {
        run('apt-get', 'purge', '-y', '-q', 'kvapi')
            if (run('dpkg-query', '-W', '-f=${db:Status-Status}', 'kvapi'))[1]
            =~ /^(installed|config-files|half|unpacked|triggers)/;
        unlink '/etc/nginx/sites-enabled/kvapi' if -l '/etc/nginx/sites-enabled/kvapi';
        if (!$had_user && defined getpwnam('kvapi')) {
            run('userdel', 'kvapi');
            run('groupdel', 'kvapi') if defined getgrnam('kvapi');
        }
        run('rm', '-rf', '/run/kvapi') unless $had_run;
    });

    subtest 'install' => sub {
        ($rc, $out) = run('apt-get', 'install', '-y', '-q', '--no-install-recommends', $deb);
        is($rc, 0, 'apt-get install ./kvapi_*.deb') or diag $out;
        like($out, qr/kvapi: set up the database with: kvapi-migrate --create/,
            'postinst says what to do next');
        ok(-x $_, "$_ installed") for qw(/usr/sbin/kvapi /usr/sbin/kvapi-migrate /usr/sbin/kvapi-admin);
        ok(-f $_, "$_ installed") for qw(/etc/kvapi/kvapi.conf /etc/kvapi/kvapi.conf.sample
            /usr/share/kvapi/schema.sql /usr/share/kvapi/openapi.json
            /usr/share/kvapi/kvapi.conf.in /usr/share/kvapi/migrations/0001_initial.sql
            /etc/nginx/sites-available/kvapi /lib/systemd/system/kvapi.service
            /lib/systemd/system/kvapi@.service /lib/systemd/system/kvapi@data.service.d/pool.conf
            /lib/systemd/system/kvapi@write.service.d/pool.conf
            /lib/systemd/system/kvapi@auth.service.d/pool.conf
            /usr/share/man/man8/kvapi.8.gz /usr/share/man/man8/kvapi-migrate.8.gz
            /usr/share/man/man8/kvapi-admin.8.gz);
        ok(glob('/usr/share/doc/kvapi/deploy.md*'), 'docs/deploy.md installed');
        is(slurp('/etc/kvapi/kvapi.conf'), slurp('/etc/kvapi/kvapi.conf.sample'),
            'kvapi.conf is the sample');
        ($rc, $out) = run('dpkg-query', '-W', '-f=${Conffiles}', 'kvapi');
        like($out, qr{^ /etc/kvapi/kvapi\.conf }m, 'kvapi.conf is a conffile');
        like($out, qr{^ /etc/nginx/sites-available/kvapi }m, 'so is the site');
        my @pw = getpwnam('kvapi');
        ok(@pw, 'user kvapi exists');
        ok($pw[2] < 1000, 'a system user');
        like($pw[8], qr{/nologin$}, 'that cannot log in');
        ok(-l '/etc/systemd/system/multi-user.target.wants/kvapi.service', 'kvapi.service enabled');
        ($rc, $out) = run('/usr/sbin/kvapi', '--version');
        like($out, qr/^kvapi \d/, 'kvapi --version');
        # With the man pages: the units' Documentation= names them.
        if (need('systemd-analyze') && need('man')) {
            ($rc, $out) = run('systemd-analyze', 'verify',
                qw(kvapi.service kvapi@data.service kvapi@write.service kvapi@auth.service));
            is("$rc $out", '0 ', 'the installed units verify');
        }
    };

    subtest 'set up the database' => sub {
        system($stack, 'db-up', "$dir/db") == 0 or die 'db-up failed';
        $stop_db = on_cleanup(sub { system($stack, 'db-down', "$dir/db") });
        ($rc, $out) = run('kvapi-migrate', '--create', '--', '--no-defaults', '--user=root');
        is($rc, 0, 'kvapi-migrate --create') or diag $out;
        like($out, qr/kvapi: applied 0001_initial/, 'it applies 0001');
    };

    my $strace = need('strace');
    subtest 'start the pools as the units would' => sub {
        my %u = map { $_ => unit('/lib/systemd/system', $_) } qw(data write auth);
        my $rundir = "/run/$u{data}{RuntimeDirectory}";
        mkdir $rundir;
        chown scalar(getpwnam($u{data}{User})), scalar(getgrnam($u{data}{Group})), $rundir;
        chmod oct($u{data}{RuntimeDirectoryMode}), $rundir;
        for my $inst (qw(data write auth)) {
            my $unit = $u{$inst};
            my $pid = fork // die "fork: $!";
            if (!$pid) {
                POSIX::setsid();
                umask oct $unit->{UMask};
                %ENV = (PATH => '/usr/sbin:/usr/bin:/sbin:/bin', LANG => 'C.UTF-8',
                    KVAPI_DB_SOCKET => $sock, %{ $unit->{env} });
                open STDIN, '<', '/dev/null';
                open STDOUT, '>>', "$dir/kvapi-$inst.log";
                open STDERR, '>&', \*STDOUT;
                exec(($strace ? ('strace', '-f', '-qq', '-o', "$dir/strace.$inst") : ()),
                    'setpriv', "--reuid=$unit->{User}", "--regid=$unit->{Group}",
                    '--init-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all',
                    'nice', '-n', $unit->{Nice} // 0, @{ $unit->{argv} })
                    or POSIX::_exit(127);
            }
            push @pools, $pid;
        }
        $stop_pools = on_cleanup(sub {
            for my $pid (@pools) {
                my ($mw) = $strace ? children($pid) : ($pid);
                kill TERM => $mw if $mw;
            }
            for my $pid (@pools) {
                wait_for("pool $pid to stop", 20, sub { waitpid($pid, WNOHANG) != 0 })
                    or kill KILL => -$pid;
            }
        });
        for my $s ('kvapi.sock', 'write.sock', 'auth.sock') {
            ok(wait_for($s, 10, sub { -S "$rundir/$s" }), "$rundir/$s is there") or next;
            my @st = stat "$rundir/$s";
            is(sprintf('%s:%s %04o', scalar getpwuid($st[4]), scalar getgrgid($st[5]), $st[2] & 07777),
                'kvapi:www-data 0660', "$s: kvapi:www-data 0660");
        }
        my @st = stat $rundir;
        is(sprintf('%04o', $st[2] & 07777), '0750', "$rundir is 0750");
        for my $i (0 .. 2) {
            my $inst = (qw(data write auth))[$i];
            my ($mw) = $strace ? children($pools[$i]) : ($pools[$i]);
            my @workers;
            wait_for("workers of $inst", 10, sub { @workers = children($mw); @workers == $u{$inst}{env}{WORKERS} });
            is(scalar @workers, $u{$inst}{env}{WORKERS}, "kvapi\@$inst: $u{$inst}{env}{WORKERS} workers");
            my $s = proc_status($workers[0] // $mw);
            my $uid = getpwnam('kvapi');
            my $gid = getgrnam('www-data');
            like($s->{Uid}, qr/^$uid\s+$uid\s+$uid\s+$uid$/, "kvapi\@$inst: workers run as kvapi");
            like($s->{Gid}, qr/^$gid\s+$gid\s+$gid\s+$gid$/, "kvapi\@$inst: group www-data");
            is($s->{CapEff}, '0000000000000000', "kvapi\@$inst: no capabilities");
            is($s->{NoNewPrivs}, 1, "kvapi\@$inst: no new privileges");
            is($s->{nice}, $u{$inst}{Nice} // 0, "kvapi\@$inst: nice " . ($u{$inst}{Nice} // 0));
        }
    };

    my $port;
    subtest 'enable the nginx site' => sub {
        symlink '../sites-available/kvapi', '/etc/nginx/sites-enabled/kvapi' or die "symlink: $!";
        ($rc, $out) = run('nginx', '-t');
        is($rc, 0, "the machine's nginx accepts the enabled site") or diag $out;
        # The same site, on a free port of its own, under a main config of
        # the test's (the machine's nginx may be running, or not).
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1);
        $port = $s->sockport;
        close $s;
        mkdir "$dir/sites-enabled";
        mkdir "$dir/nginx-tmp";
        chown scalar(getpwnam('www-data')), -1, "$dir/nginx-tmp";
        (my $site = slurp('/etc/nginx/sites-enabled/kvapi')) =~ s/^(\s*)listen 3003( backlog=\d+)?;$/$1listen 127.0.0.1:$port$2;/m
            or die 'no listen 3003 in the site';
        spew("$dir/sites-enabled/kvapi", $site, 0644);
        spew("$dir/nginx.conf", <<"EOF", 0644);
user www-data;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $dir/nginx-tmp/body;
    fastcgi_temp_path $dir/nginx-tmp/fastcgi;
    proxy_temp_path $dir/nginx-tmp/proxy;
    scgi_temp_path $dir/nginx-tmp/scgi;
    uwsgi_temp_path $dir/nginx-tmp/uwsgi;
    include $dir/sites-enabled/*;
}
EOF
        ($rc, $out) = run('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf");
        is($rc, 0, "nginx starts on port $port") or diag $out;
        $stop_nginx = on_cleanup(sub {
            my $pid = eval { slurp("$dir/nginx.pid") } or return;
            chomp $pid;
            kill QUIT => $pid;
            wait_for('nginx to stop', 10, sub { !kill 0, $pid });
        });
    };

    subtest 'a round trip through nginx and the three pools' => sub {
        my $b = "http://127.0.0.1:$port";
        my $req = sub {
            my ($m, $path, $body, $token) = @_;
            my %h = $token ? (Authorization => "Bearer $token") : ();
            $h{'Content-Type'} = 'application/json' if $body;
            my $r = $http->request($m, "$b$path",
                {headers => \%h, $body ? (content => $json->encode($body)) : ()});
            $r->{json} = eval { $json->decode($r->{content}) };
            return $r;
        };
        my $r;
        ok(wait_for('health', 10, sub { $r = $req->(GET => '/api/health'); $r->{status} == 200 }),
            'health 200') or diag $r->{content};
        is_deeply($r->{json}, {status => 'success', data => {database => 'up'}}, 'database up');
        $r = $req->(POST => '/api/register', {username => 'deploy_user',
            email => 'deploy@example.com', password => 'secure_password123', full_name => 'De Ploy'});
        is($r->{status}, 201, 'register 201 (bcrypt pool)') or diag $r->{content};
        $r = $req->(POST => '/api/token', {username => 'deploy_user', password => 'secure_password123'});
        is($r->{status}, 200, 'token 200 (bcrypt pool)') or diag $r->{content};
        my $t = $r->{json}{data}{access_token} // '';
        is(length $t, 43, 'a token');
        my $v = {nested => [1, 'two', {three => JSON::PP::true}]};
        $r = $req->(POST => '/api/data', {key => 'deploy/key', value => $v}, $t);
        is($r->{status}, 201, 'store 201 (data pool)') or diag $r->{content};
        is($r->{headers}{location}, '/api/data/deploy%2Fkey', 'Location');
        $r = $req->(GET => '/api/data/deploy%2Fkey', undef, $t);
        is_deeply($r->{json}, {status => 'success', data => {key => 'deploy/key', value => $v}},
            'read it back');
        $r = $req->(PUT => '/api/data/deploy%2Fkey', {value => 42}, $t);
        is($r->{status}, 200, 'update 200');
        $r = $req->(GET => '/api/data', undef, $t);
        is_deeply($r->{json}{data}{items}, [{key => 'deploy/key', value => 42}], 'list');
        $r = $req->(DELETE => '/api/data/deploy%2Fkey', undef, $t);
        is($r->{status}, 200, 'delete 200');
        $r = $req->(GET => '/api/openapi.json');
        is($r->{status}, 200, 'openapi.json 200');
        is($r->{content}, slurp('/usr/share/kvapi/openapi.json'), 'the installed openapi.json');
        # The web console and the API docs (t/88-console.t drives them).
        $r = $req->(GET => '/');
        is($r->{status}, 200, 'the console at /');
        is($r->{content}, slurp('/usr/share/kvapi/www/index.html'), 'the installed index.html');
        like($r->{headers}{'content-security-policy'} // '', qr/^default-src 'self'; /,
            'with its Content-Security-Policy');
        is($req->(GET => '/docs')->{status}, 200, 'the API docs at /docs');
        $r = $req->(GET => '/ui/vendor/swagger-ui/swagger-ui-bundle.js');
        is($r->{status}, 200, 'Swagger UI, installed from npm');
        ok(!-e '/usr/share/kvapi/www/node_modules', 'and no node_modules');
        $r = $req->(GET => '/elsewhere');
        is_deeply([$r->{status}, $r->{json}{code}], [404, 'NOT_FOUND'], 'nginx answers outside /api/');
        my $rows = qx{printf 'SELECT COUNT(*) FROM users;' | '$stack' sql '$dir/db' kvapi};
        is($rows, "1\n", 'the user is in the database kvapi');
    };

    subtest 'stop nginx and the pools' => sub {
        $stop_nginx->() if $stop_nginx;
        $stop_pools->() if $stop_pools;
        my $log = join '', map { slurp("$dir/kvapi-$_.log") } qw(data auth);
        my $n = () = $log =~ /worker stopping after \d+ requests/g;
        my $want = 0;
        $want += unit('/lib/systemd/system', $_)->{env}{WORKERS} for qw(data auth);
        is($n, $want, "every worker stopped gracefully ($want)");
        unlike($log, qr/Child\[\d+\] died|Spawning child\[\d+\] failed| (?:error|crit|warn):/,
            'no worker died, failed or complained') or diag $log;
    };

    subtest 'the system calls the workers made are all allowed by the unit' => sub {
        return unless $strace && need('systemd-analyze');
        my $allowed = syscall_allowed(@{ unit('/lib/systemd/system', 'data')->{SystemCallFilter} });
        ok(keys %$allowed > 200, scalar(keys %$allowed) . ' system calls allowed');
        for my $inst (qw(data auth)) {
            # From the exec of spawn-fcgi on: systemd applies the filter
            # then, after dropping privileges as setpriv did here.
            my (%used, $on);
            for (split /\n/, slurp("$dir/strace.$inst")) {
                $on ||= /^\d+\s+execve\("[^"]*\/spawn-fcgi"/;
                $used{$1} = 1 if $on && /^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]/;
            }
            diag "kvapi\@$inst: " . join ' ', sort keys %used if $ENV{KVAPI_TEST_VERBOSE};
            my @bad = sort grep { !$allowed->{$_} } keys %used;
            ok(keys %used > 20, "kvapi\@$inst: " . keys(%used) . ' different system calls');
            is_deeply(\@bad, [], "kvapi\@$inst: none outside SystemCallFilter");
        }
    };

    subtest 'an upgrade keeps local edits and migrates' => sub {
        spew('/etc/kvapi/kvapi.conf', slurp('/etc/kvapi/kvapi.conf') . "# a local edit\n", 0644);
        ($rc, $out) = run('apt-get', 'install', '-y', '-q', '--reinstall', $deb);
        is($rc, 0, 'apt-get install --reinstall') or diag $out;
        like($out, qr/kvapi-migrate: kvapi: up to date/, 'postinst ran kvapi-migrate');
        like(slurp('/etc/kvapi/kvapi.conf'), qr/# a local edit\n\z/, 'kvapi.conf kept');
    };

    subtest 'purge: nothing left' => sub {
        $stop_db->() if $stop_db;
        ($rc, $out) = run('apt-get', 'purge', '-y', '-q', 'kvapi');
        is($rc, 0, 'apt-get purge kvapi') or diag $out;
        ok(!-e $_, "$_ gone") for qw(/usr/sbin/kvapi /usr/sbin/kvapi-migrate /usr/sbin/kvapi-admin /etc/kvapi
            /usr/share/kvapi /etc/nginx/sites-available/kvapi /lib/systemd/system/kvapi@.service
            /etc/systemd/system/multi-user.target.wants/kvapi.service
            /var/log/nginx/kvapi.access.log);
        ok(!-l '/etc/nginx/sites-enabled/kvapi', 'the link in sites-enabled gone');
        ($rc, $out) = run('nginx', '-t');
        is($rc, 0, "the machine's nginx config is sound again") or diag $out;
    };
}
