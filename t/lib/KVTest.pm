package KVTest;

# Test harness in the manner of Test::Nginx: every test file starts its own
# kvapi stack (nginx + FastCGI workers + a database of its own) in a temp
# directory on a free port, talks real HTTP to it, and when it ends stops
# the stack and fails if the logs show alerts, crashes or sanitizer
# reports.  Starting and stopping is script/stack's job; this module only
# decides names, ports and the config.
#
#   my $s = KVTest->start(%conf);      # kvapi.conf keys; plus workers => N
#                                      # (read and write pools, 2 each),
#                                      # private_db => 1 (own MariaDB)
#                                      # external_db => 1 (conf names it)
#   my $res = $s->request(POST => '/api/register', {json => {...}});
#   $s->error_is($res, 'INVALID_JSON', 'bad body');
#
# With KVAPI_TEST_DB_VAR set (script/test does) every file uses that
# MariaDB, each with a fresh database and user; otherwise each file starts
# a MariaDB of its own.  KVAPI_TEST_KEEP=1 keeps the temp directory.  The
# worker is $KVAPI_BUILDDIR/src/kvapi unless KVAPI_BIN names another.
# KVAPI_OPENAPI_RECORD=FILE appends every answer request() and raw() get
# to FILE, one JSON line each, for t/81-openapi.t to check.

use strict;
use warnings;

use B ();
use Cwd qw(abs_path);
use Fcntl ();
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP;
use POSIX ();
use Test::More ();
use Time::HiRes ();

# The error table of API.md ("Validation and errors", "Beyond the seed",
# "Accounts and sessions", "Data lifecycle" and "Batch and changes"), word
# for word: code =>
# [HTTP status, message].
our %ERRORS = (
    INVALID_REQUEST => [400, 'Invalid request. Please provide all required fields: username, email, password, full_name.'],
    INVALID_PASSWORD => [400, 'The provided password does not meet the requirements. Password must be 8 to 72 bytes long.'],
    INVALID_AGE => [400, 'Invalid age value. Age must be a positive integer.'],
    INVALID_GENDER => [400, 'Invalid gender value. Gender must be a non-empty string of at most 32 characters.'],
    USERNAME_EXISTS => [409, 'The provided username is already taken. Please choose a different username.'],
    EMAIL_EXISTS => [409, 'The provided email is already registered. Please use a different email address.'],
    MISSING_FIELDS => [400, 'Missing fields. Please provide both username and password.'],
    INVALID_CREDENTIALS => [401, 'Invalid credentials. The provided username or password is incorrect.'],
    INVALID_TOKEN => [401, 'Invalid access token provided.'],
    INVALID_KEY => [400, 'The provided key is not valid or missing.'],
    INVALID_VALUE => [400, 'The provided value is not valid or missing.'],
    KEY_EXISTS => [409, 'The provided key already exists in the database. To update an existing key, use the update API.'],
    KEY_NOT_FOUND => [404, 'The provided key does not exist in the database.'],
    INVALID_JSON => [400, 'The request body is not valid JSON.'],
    UNSUPPORTED_MEDIA_TYPE => [415, 'Content-Type must be application/json.'],
    PAYLOAD_TOO_LARGE => [413, 'The request body is too large.'],
    BAD_REQUEST => [400, 'The request could not be parsed.'],
    NOT_FOUND => [404, 'The requested resource does not exist.'],
    METHOD_NOT_ALLOWED => [405, 'The method is not allowed for this resource.'],
    TOO_MANY_REQUESTS => [429, 'Too many requests. Please try again later.'],
    SERVICE_UNAVAILABLE => [503, 'The service is temporarily unavailable. Please try again later.'],
    INTERNAL_SERVER_ERROR => [500, 'An internal server error occurred. Please try again later.'],
    PRECONDITION_FAILED => [412, 'The resource has changed since it was read.'],
    INVALID_QUERY => [400, 'The query parameters are not valid.'],
    # "Accounts and sessions".
    INVALID_GRANT => [401, 'The refresh token is not valid.'],
    UNSUPPORTED_GRANT_TYPE => [400, 'The grant type is not supported.'],
    INVALID_PROFILE => [400, 'The profile fields are not valid.'],
    MISSING_PASSWORDS => [400, 'Please provide both current_password and new_password.'],
    SESSION_NOT_FOUND => [404, 'The session does not exist.'],
    ACCOUNT_DISABLED => [403, 'This account is disabled.'],
    ACCOUNT_LOCKED => [429, 'Too many failed login attempts. Please try again later.'],
    # "Data lifecycle".
    INVALID_TTL => [400, 'The ttl must be an integer number of seconds between 1 and 31536000.'],
    QUOTA_EXCEEDED => [507, 'The storage quota for this account is exceeded.'],
    # "Batch and changes".
    CHANGES_EXPIRED => [410, 'The requested revision is no longer available. Please resync.'],
    INVALID_BATCH => [400, 'The batch operations are not valid.'],
);

# Headers the table puts beside some statuses ("401 + WWW-Authenticate").
our %ERROR_HEADERS = (
    INVALID_TOKEN => ['www-authenticate', qr/^Bearer\b/i],
    METHOD_NOT_ALLOWED => ['allow', qr/\S/],
    TOO_MANY_REQUESTS => ['retry-after', qr/^\d+$/],
    # Whole seconds until the lock-out ends, at least 1.
    ACCOUNT_LOCKED => ['retry-after', qr/^[1-9][0-9]*$/],
    # nginx's and the worker's alike.
    SERVICE_UNAVAILABLE => ['retry-after', qr/^1$/],
);

# Lines that fail a test file when its logs hold them.  multiwatch says
# only that a worker died, not how; a worker never exits by itself, so any
# death is a crash.
our @BAD_LOG = (
    qr/\[(?:alert|emerg|crit)\]/,
    qr/AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault/,
    qr/Child\[\d+\] died|Spawning child\[\d+\] failed/,
    # valgrind -q (script/test --valgrind) prints only errors and leaks.
    qr/^==\d+== \S/m,
);

our $JSON = JSON::PP->new->utf8->canonical;

# Functions a test file may import: use KVTest qw(json_is tag kpath
# poll_until).
sub import {
    my ($class, @names) = @_;
    my $caller = caller;
    no strict 'refs';
    for my $n (@names) {
        die "KVTest exports only json_is, tag, kpath, show and poll_until, not $n\n"
            unless $n eq 'json_is' || $n eq 'tag' || $n eq 'kpath'
            || $n eq 'show' || $n eq 'poll_until';
        *{"${caller}::$n"} = \&{"KVTest::$n"};
    }
}

# A decoded JSON value with its types made visible, so that is_deeply tells
# 30 from "30" and true from 1. Only use it on freshly decoded data.
sub tag {
    my ($v) = @_;
    return 'null' unless defined $v;
    return 'bool:' . ($v ? 'true' : 'false') if JSON::PP::is_bool($v);
    return [ map { tag($_) } @$v ] if ref $v eq 'ARRAY';
    return { map { $_ => tag($v->{$_}) } keys %$v } if ref $v eq 'HASH';
    return 'str:' . $v if B::svref_2object(\$v)->FLAGS & B::SVp_POK;
    return sprintf 'num:%.17g', $v;
}

# The data of a token answer (API.md, Accounts and sessions: a login opens
# a session) as response $r should hold it: its own tokens and session
# id where they have their forms, else 'missing', so that json_is fails.
# $lifetime and $refresh_lifetime: the configured ones, if not the defaults.
sub token_data {
    my ($r, $lifetime, $refresh_lifetime) = @_;
    my $d = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {};
    my $form = sub {
        my ($v, $n) = @_;
        return defined $v && !ref $v && $v =~ /\A[A-Za-z0-9_-]{$n}\z/ ? "$v" : 'missing';
    };
    return { access_token => $form->($d->{access_token}, 43), token_type => 'Bearer',
        expires_in => $lifetime // 3600, refresh_token => $form->($d->{refresh_token}, 43),
        refresh_expires_in => $refresh_lifetime // 2592000,
        session_id => $form->($d->{session_id}, 22) };
}

# Text for a test's name: bytes outside printable ASCII as \x{..}, undef
# as "undef", and with $max, text longer than that cut (saying how long).
sub show {
    my ($t, $max) = @_;
    $t //= 'undef';
    $t = substr($t, 0, $max - 10) . '...(' . length($t) . ' chars)' if $max && length $t > $max;
    $t =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge;
    return $t;
}

# The URL path of a key: its UTF-8 bytes, every byte except A-Za-z0-9-._~
# as %XX in upper-case hex.
sub kpath {
    my ($key) = @_;
    utf8::encode($key);
    $key =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return "/api/data/$key";
}

# The whole body of response $r, compared with its JSON types.
sub json_is {
    my ($r, $exp, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $got = eval { JSON::PP->new->utf8->allow_nonref->decode($r->{body}) };
    Test::More::is_deeply(tag($got), tag($exp), $name)
        or Test::More::diag("status $r->{status}, body: " . substr($r->{body}, 0, 2000));
}

# Wait for something observable instead of sleeping "long enough": call
# $cond every 50 ms until it returns true or $limit seconds have passed.
# Returns the seconds it took (true, even when 0: "0 but true"), or undef
# on timeout.
sub poll_until {
    my ($limit, $cond) = @_;
    my $t0 = Time::HiRes::time();
    while (1) {
        if ($cond->()) {
            my $dt = Time::HiRes::time() - $t0;
            return $dt > 0 ? $dt : '0 but true';
        }
        return undef if Time::HiRes::time() - $t0 > $limit;
        Time::HiRes::sleep(0.05);
    }
}

my $SRCDIR = $ENV{KVAPI_SRCDIR} // abs_path(dirname(__FILE__) . '/../..');
my $BUILDDIR = $ENV{KVAPI_BUILDDIR} // $SRCDIR;
my $STACK = "$SRCDIR/script/stack";
my @LIVE;
my $SEQ = 0;

sub start {
    my ($class, %conf) = @_;
    my $self = bless {
        workers => delete $conf{workers} // 2,
        private_db => delete $conf{private_db},
        external_db => delete $conf{external_db},
        conf => \%conf,
        allow => [],
        pid => $$,
        http => HTTP::Tiny->new(keep_alive => 0, max_redirect => 0,
            timeout => 120, agent => 'kvtest'),
    }, $class;

    my $shared = $ENV{KVAPI_TEST_DB_VAR};
    undef $shared if $self->{private_db}
        || !($shared && -S "$shared/run/mysqld.sock");
    # Under a shared directory script/test can sweep what a killed test
    # leaves behind.
    my $parent = $shared ? "$shared/t" : File::Spec->tmpdir;
    mkdir $parent;
    $self->{dir} = tempdir('kvt-XXXXXX', DIR => $parent);
    push @LIVE, $self;
    _signals();

    if ($self->{external_db}) {
        # A database made by someone else (t/95: a Galera cluster):
        # %conf names it (db_host or db_hosts, db_name, db_user,
        # db_password); no MariaDB of ours, no db-create, no sql().
        @$self{qw(db db_user db_password)} = @conf{qw(db_name db_user db_password)};
        $self->_app_up;
        return $self;
    }
    if ($shared) {
        $self->{var} = $shared;
    } else {
        $self->{var} = "$self->{dir}/db";
        $self->{own_db} = 1;
        $self->_stack(undef, 'db-up', $self->{var});
    }
    $self->{db} = $self->{db_user} = sprintf 'kvt_%d_%s', $$, _random(8);
    $self->{db_password} = _random(24);
    $self->_stack("$self->{db_password}\n", 'db-create', $self->{var},
        $self->{db}, $self->{db_user});
    $self->{db_created} = 1;
    $self->_app_up;
    return $self;
}

sub port { $_[0]{port} }
sub base_url { "http://127.0.0.1:$_[0]{port}" }
# The metrics listener (metrics_listen): GET /metrics there.
sub metrics_port { $_[0]{metrics_port} }
sub metrics_url { "http://127.0.0.1:$_[0]{metrics_port}" }
sub dir { $_[0]{dir} }
sub config_path { "$_[0]{dir}/kvapi.conf" }
sub db_name { $_[0]{db} }
sub db_user { $_[0]{db_user} }
# The MariaDB directory (its admin socket is db_var/run/mysqld.sock).
sub db_var { $_[0]{var} }

# 'kvapi' (workers, spawn-fcgi, multiwatch), 'nginx' (error log) or
# 'access' (nginx access log).
sub log_text {
    my ($self, $which) = @_;
    my %file = (kvapi => 'kvapi.log', nginx => 'nginx-error.log',
        access => 'nginx-access.log');
    my $f = $file{$which} or die "log_text: no log '$which'";
    open my $fh, '<', "$self->{dir}/run/log/$f" or return '';
    local $/;
    return scalar <$fh>;
}

# The database user's password: a secret no log may hold (t/60).
sub db_password { $_[0]{db_password} }

# Every log this stack writes, file path => text: the workers' and
# multiwatch's, nginx's error and access logs (run/log) and MariaDB's
# (log/ of the database directory, shared under script/test).  What is
# still running may not have written everything: stop it first (app_down,
# db_down) to read what it flushed.
sub logs {
    my ($self) = @_;
    my %text;
    my @files = glob "$self->{dir}/run/log/*";
    push @files, glob "$self->{var}/log/*" if $self->{var};
    for my $f (grep { -f } @files) {
        open my $fh, '<:raw', $f or die "$f: $!";
        local $/;
        $text{$f} = <$fh> // '';
    }
    return \%text;
}

# nginx's access log, one JSON object a line (nginx/kvapi.conf.in,
# kvapi_json), decoded: a list of hashes.  Dies on a line that is not a
# JSON object: every line must be one.
sub access_log {
    my ($self) = @_;
    my $n = 0;
    return [ map {
        $n++;
        my $o = eval { JSON::PP->new->utf8->decode($_) };
        die "access log line $n is not a JSON object: $_\n" unless ref $o eq 'HASH';
        $o;
    } split /\n/, $self->log_text('access') ];
}

# The JSON access log line of request id $rid, or undef.
sub access_line {
    my ($self, $rid) = @_;
    my @l = grep { ($_->{request_id} // '') eq $rid } @{ $self->access_log };
    return $l[0];
}

# The members of one access log line, fast: a fault test counts tens of
# thousands of lines while its load runs, where JSON::PP would take
# seconds.  The line is the site's kvapi_json format (nginx/kvapi.conf.in):
# one flat object of strings (escapes kept as written), numbers and null.
# undef unless the whole line is such an object.
sub _log_fields {
    my ($line) = @_;
    my %o;
    return undef unless $line =~ /\A\{/gc;
    while ($line =~ /\G"(\w+)":(?:"((?:[^"\\]|\\.)*)"|(-?[0-9][0-9.]*|null))(,|\}\z)/gc) {
        $o{$1} = defined $2 ? $2 : $3 eq 'null' ? undef : $3;
        return \%o if $4 eq '}';
    }
    return undef;
}

# A counter of the lines of nginx's access log that $match accepts: a
# code ref, given the line's decoded JSON object, or a qr// on the line's
# text (all lines without one).  Each call returns how many there are by
# now, reading only what was added since the last call.  nginx writes a
# line as it finishes a request, so the count tells how far a load has got.
sub access_counter {
    my ($self, $match) = @_;
    my $re = ref $match eq 'CODE'
        ? sub { my $o = _log_fields($_[0]); $o && $match->($o) }
        : sub { !$match || $_[0] =~ /$match/ };
    my $file = "$self->{dir}/run/log/nginx-access.log";
    my ($off, $n, $part) = (0, 0, '');
    return sub {
        open my $fh, '<:raw', $file or return $n;
        seek $fh, $off, 0 or return $n;
        local $/;
        my $new = <$fh> // '';
        $off += length $new;
        $new = $part . $new;
        # A line still being written is counted by a later call.
        $part = $new =~ s/([^\n]*)\z// ? $1 : '';
        $n += grep { $re->($_) } split /\n/, $new;
        return $n;
    };
}

# Lines matching qr// are expected in the logs (fault tests).
sub allow_log { my $self = shift; push @{ $self->{allow} }, @_ }

# The live workers: children of multiwatch, which spawn-fcgi execs into,
# of the data pool ('kvapi', the default) or the bcrypt pool ('auth').
sub worker_pids {
    my ($self, $pool) = @_;
    open my $fh, '<', "$self->{dir}/run/" . ($pool // 'kvapi') . '.pid' or return;
    chomp(my $mw = <$fh> // '');
    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $s, '<', $stat or next;
        my ($state, $ppid) = (<$s> // '') =~ /\) (\S) (\d+)/ or next;
        push @pids, $stat =~ m{(\d+)} if $ppid == $mw && $state ne 'Z';
    }
    @pids = sort { $a <=> $b } @pids;
    return @pids;
}

# Stop the workers and nginx, rewrite the config with more overrides, and
# start them again on the same port if it is still free.
sub restart_app {
    my ($self, %conf) = @_;
    $self->{workers} = delete $conf{workers} if exists $conf{workers};
    %{ $self->{conf} } = (%{ $self->{conf} }, %conf);
    $self->_stack(undef, 'app-down', "$self->{dir}/run");
    $self->_app_up($self->{port});
}

# Stop nginx and the workers as script/stack app-down does (nginx first);
# restart_app starts them again.
sub app_down {
    my ($self) = @_;
    $self->_stack(undef, 'app-down', "$self->{dir}/run");
}

sub db_down {
    my ($self) = @_;
    die "db_down needs KVTest->start(private_db => 1)\n" unless $self->{own_db};
    $self->_stack(undef, 'db-down', $self->{var});
}

# kill -9 the private MariaDB (db_up restarts it with crash recovery).
sub db_kill {
    my ($self) = @_;
    die "db_kill needs KVTest->start(private_db => 1)\n" unless $self->{own_db};
    $self->_stack(undef, 'db-kill', $self->{var});
}

sub db_up {
    my ($self) = @_;
    die "db_up needs KVTest->start(private_db => 1)\n" unless $self->{own_db};
    $self->_stack(undef, 'db-up', $self->{var});
}

sub request {
    my ($self, $method, $path, $opt) = @_;
    $opt //= {};
    my %headers = %{ $opt->{headers} // {} };
    my $body = $opt->{body};
    if (exists $opt->{json}) {
        $body = $JSON->encode($opt->{json});
        $headers{'Content-Type'} = 'application/json'
            unless grep { lc eq 'content-type' } keys %headers;
    }
    my $res = $self->{http}->request($method, $self->base_url . $path, {
        headers => \%headers,
        defined $body ? (content => $body) : (),
    });
    my $r = _response($res->{status}, $res->{headers}, $res->{content});
    _record($method, $path, $r, \%headers, $body) if $ENV{KVAPI_OPENAPI_RECORD};
    return $r;
}

# Send bytes on a new connection and parse the answer (without closing our
# side first: nginx drops a request whose client half-closed).
sub raw {
    my ($self, $bytes, $timeout) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 10)
        or die "raw: connect: $!";
    binmode $sock;
    local $SIG{PIPE} = 'IGNORE';
    # nginx may answer and close before it has read everything we send.
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($sock, $bytes, 65536, $off);
        last unless $n;
        $off += $n;
    }
    my ($data, $sel) = ('', IO::Select->new($sock));
    while ($sel->can_read($timeout // 30)) {
        my $n = sysread($sock, $data, 65536, length $data);
        last unless $n;
        last if _complete($data, $bytes =~ /\AHEAD /);
    }
    close $sock;
    my $res = _parse_raw($data);
    $res->{raw} = $data;
    _record_raw($bytes, $res) if $ENV{KVAPI_OPENAPI_RECORD};
    return $res;
}

sub sql {
    my ($self, $sql) = @_;
    my $out = $self->_stack($sql, 'sql', $self->{var}, $self->{db});
    my %esc = (n => "\n", t => "\t", 0 => "\0", '\\' => '\\');
    return [ map {
        [ map { $_ eq 'NULL' ? undef : s/\\([nt0\\])/$esc{$1}/gr } split /\t/, $_, -1 ]
    } split /\n/, $out ];
}

sub register {
    my ($self, %fields) = @_;
    return $self->request(POST => '/api/register', {json => \%fields});
}

# A registered user with a token; dies if the API cannot make one.
sub new_user {
    my ($self, $prefix) = @_;
    my $name = sprintf '%s_%d_%d_%s', $prefix // 'u', $$, ++$SEQ, _random(4);
    my %u = (username => $name, email => "$name\@example.com",
        password => 'correct horse 1', full_name => "Test $name");
    my $res = $self->register(%u);
    die "new_user: register gave $res->{status}: $res->{body}\n"
        unless $res->{status} == 201 && $res->{json};
    $u{user_id} = $res->{json}{data}{user_id};
    $res = $self->request(POST => '/api/token',
        {json => {username => $u{username}, password => $u{password}}});
    die "new_user: token gave $res->{status}: $res->{body}\n"
        unless $res->{status} == 200 && $res->{json};
    $u{token} = $res->{json}{data}{access_token};
    return \%u;
}

sub auth { return {Authorization => "Bearer $_[1]"} }

# One test: the response is error $code exactly as the contract says.
sub error_is {
    my ($self, $res, $code, $name) = @_;
    my $e = $ERRORS{$code} or die "error_is: unknown error code $code";
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name // $code, sub {
        Test::More::is($res->{status}, $e->[0], 'status');
        Test::More::is($res->{headers}{'content-type'},
            'application/json; charset=utf-8', 'content type');
        if (my $h = $ERROR_HEADERS{$code}) {
            Test::More::like($res->{headers}{ $h->[0] } // '', $h->[1],
                "$h->[0] header");
        }
        Test::More::is_deeply($res->{json},
            {status => 'error', code => $code, message => $e->[1]}, 'body')
            or Test::More::diag("body: $res->{body}");
    });
}


# The worker binary app-up runs (a test may wrap it: KVAPI_BIN).
sub worker_bin { $ENV{KVAPI_BIN} // "$BUILDDIR/src/kvapi" }

# request() from another client address: the connection's local end is
# bound to $addr (all of 127/8 is loopback on Linux), for the limits
# nginx keeps per client address.
sub request_from {
    my ($self, $addr, @args) = @_;
    local $self->{http} = HTTP::Tiny->new(keep_alive => 0, max_redirect => 0,
        timeout => 120, agent => 'kvtest', local_address => $addr);
    return $self->request(@args);
}

# One FastCGI request straight to a worker pool's socket, past nginx and
# its limits.  Not libfcgi's cgi-fcgi: it sends a body only as long as
# CONTENT_LENGTH says, and the worker's read-to-the-end path (no
# CONTENT_LENGTH) and its answer to a body longer than announced are what
# t/45 must reach.  %$params are the FastCGI params (REQUEST_METHOD, PATH_INFO,
# REQUEST_URI, CONTENT_LENGTH, ... as nginx would send them; leave
# CONTENT_LENGTH out to make the worker read to the end), $stdin the body.
# $opt{pool} is 'kvapi' (the default) or 'auth'.  Returns the worker's
# CGI answer as request() does ({status, headers, body, json}, the status
# from its Status: line), with raw (its whole stdout) and app_status (of
# FCGI_END_REQUEST).
sub fcgi {
    my ($self, $params, $stdin, %opt) = @_;
    my $path = "$self->{dir}/run/" . ($opt{pool} // 'kvapi') . '.sock';
    my $sock = IO::Socket::UNIX->new(Peer => $path)
        or die "fcgi: connect $path: $!";
    binmode $sock;
    local $SIG{PIPE} = 'IGNORE';
    # Records of request id 1: version, type, id, length, padding.
    my $rec = sub { pack('CCnnCx', 1, $_[0], 1, length $_[1], 0) . $_[1] };
    my $len = sub { $_[0] < 128 ? pack('C', $_[0]) : pack('N', $_[0] | 0x80000000) };
    my $pairs = join '', map {
        $len->(length $_) . $len->(length $params->{$_}) . $_ . $params->{$_}
    } sort keys %$params;
    # FCGI_BEGIN_REQUEST: role FCGI_RESPONDER, no FCGI_KEEP_CONN.
    my $out = $rec->(1, pack('nCx5', 1, 0));
    for my $stream ([4, $pairs], [5, $stdin // '']) {
        my ($type, $data) = @$stream;
        for (my $o = 0; $o < length $data; $o += 65535) {
            $out .= $rec->($type, substr $data, $o, 65535);
        }
        $out .= $rec->($type, '');
    }
    my $off = 0;
    while ($off < length $out) {
        my $n = syswrite($sock, $out, 65536, $off);
        last unless $n;    # the worker answered and closed early
        $off += $n;
    }
    my ($in, $sel, $stdout, $app) = ('', IO::Select->new($sock), '', undef);
    my $deadline = time + ($opt{timeout} // 30);
    READ: while (!defined $app && $sel->can_read($deadline - time)) {
        last unless sysread($sock, $in, 65536, length $in);
        while (length $in >= 8) {
            my ($type, $clen, $pad) = (unpack 'CCnnC', $in)[1, 3, 4];
            last if length $in < 8 + $clen + $pad;
            my $content = substr $in, 8, $clen;
            substr($in, 0, 8 + $clen + $pad) = '';
            $stdout .= $content if $type == 6;
            if ($type == 3) {
                $app = unpack 'N', $content;
                last READ;
            }
        }
    }
    close $sock;
    my ($head, $body) = split /\r?\n\r?\n/, $stdout, 2;
    my %h;
    for (split /\r?\n/, $head // '') {
        $h{lc $1} = $2 if /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
    }
    my ($status) = ($h{status} // '') =~ /^(\d{3})\b/;
    my $res = _response($status, \%h, $body);
    @$res{qw(raw app_status)} = ($stdout, $app);
    return $res;
}

# Stop everything this file started; fail one test if the logs hold bad
# lines (and stay silent when they are clean, so plans do not change).
sub stop {
    my ($self) = @_;
    return if $self->{stopped} || $self->{pid} != $$;
    $self->{stopped} = 1;
    local $SIG{PIPE} = 'IGNORE';
    local $?;
    eval { $self->_stack(undef, 'app-down', "$self->{dir}/run") };
    Test::More::diag($@) if $@;
    if ($self->{own_db}) {
        eval { $self->_stack(undef, 'db-down', $self->{var}) };
    } elsif ($self->{db_created}) {
        eval { $self->_stack(undef, 'db-drop', $self->{var}, $self->{db},
            $self->{db_user}) };
    }
    Test::More::diag($@) if $@;

    my @bad;
    for my $log (qw(kvapi nginx)) {
        for my $line (split /\n/, $self->log_text($log)) {
            next unless grep { $line =~ $_ } @BAD_LOG;
            next if grep { $line =~ $_ } @{ $self->{allow} };
            push @bad, "$log: $line";
        }
    }
    if (@bad) {
        Test::More::ok(0, 'logs are free of alerts, crashes and sanitizer reports');
        Test::More::diag(join "\n", @bad);
    }
    if ($ENV{KVAPI_TEST_KEEP}) {
        Test::More::diag("kept $self->{dir}");
    } else {
        remove_tree($self->{dir});
    }
    @LIVE = grep { $_ != $self } @LIVE;
}

sub DESTROY { $_[0]->stop }

END {
    # A copy: stop() takes each stack out of @LIVE, which would free the
    # elements a loop over @LIVE itself still walks (a file that died with
    # two stacks left the second running).
    my @live = reverse @LIVE;
    $_->stop for @live;
}

# Write the config and start workers + nginx, on $port or a free one.
sub _app_up {
    my ($self, $port) = @_;
    my %conf = (
        db_socket => $self->{external_db} ? undef : "$self->{var}/run/mysqld.sock",
        db_name => $self->{db},
        db_user => $self->{db_user},
        db_password => $self->{db_password},
        bcrypt_cost => 4,
        token_lifetime => 3600,
        log_level => 'info',
        # Tests register and log in far faster than a person: only the
        # rate-limit test sets a real limit.
        auth_rate => '10000r/s',
        auth_burst => 10000,
        %{ $self->{conf} },
    );
    my $file = $self->config_path;

    local $ENV{KVAPI_BIN} = $ENV{KVAPI_BIN} // "$BUILDDIR/src/kvapi";
    # workers => N is the size of both data pools, the reads' and the
    # writes' (the write pool's own default, eight a core, is for speed).
    local $ENV{KVAPI_WRITE_WORKERS} = $self->{workers};
    # Another file may take a port between our probe and nginx's bind:
    # the public one or the metrics listener's (kept across restart_app).
    for my $try (1 .. 3) {
        $self->{port} = $port // _free_port();
        $self->{metrics_port} = _free_port() if $try > 1 || !$self->{metrics_port};
        undef $port;
        my %c = (metrics_listen => "127.0.0.1:$self->{metrics_port}", %conf);
        my $text = join '', map { "$_ = $c{$_}\n" }
            grep { defined $c{$_} } sort keys %c;
        open my $fh, '>', $file or die "$file: $!";
        chmod 0600, $file or die "chmod $file: $!";
        print $fh $text;
        close $fh or die "$file: $!";
        eval {
            $self->_stack(undef, 'app-up', "$self->{dir}/run",
                "127.0.0.1:$self->{port}", $file, $self->{workers});
            1;
        } and return;
        die $@ if $try == 3;
    }
}

sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1) or die "free port: $!";
    return $s->sockport;
}

sub _random {
    my ($n) = @_;
    my @c = ('a' .. 'z', '0' .. '9');
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    read($fh, my $bytes, $n) == $n or die "/dev/urandom: short read";
    return join '', map { $c[ord($_) % @c] } split //, $bytes;
}

# Run script/stack with @args, $input (if defined) on its stdin through a
# file in our private directory (a pipe could fill both ways); return its
# stdout, which must not reach ours: that is the TAP stream.
sub _stack {
    my ($self, $input, @args) = @_;
    my $in = '/dev/null';
    if (defined $input) {
        my $tmp;
        ($tmp, $in) = File::Temp::tempfile(DIR => $self->{dir});
        print $tmp $input;
        close $tmp or die "$in: $!";
    }
    my $pid = open(my $out, '-|') // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $in or POSIX::_exit(127);
        { no warnings 'exec'; exec $STACK, @args }
        print STDERR "exec $STACK: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    my $text = <$out> // '';
    close $out;
    my $status = $?;
    unlink $in if defined $input;
    die "script/stack @args[0, 1] failed (status $status)\n" if $status;
    return $text;
}

# Leave through END (which stops the stacks) on the signals a Ctrl-C or a
# killed prove sends.
sub _signals {
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %num) {
        $SIG{$sig} = sub { exit 128 + $num{$sig} }
            if ($SIG{$sig} // 'DEFAULT') eq 'DEFAULT';
    }
}

sub _response {
    my ($status, $headers, $body) = @_;
    my $res = {status => $status, headers => $headers // {}, body => $body // ''};
    my $ct = $res->{headers}{'content-type'} // '';
    $res->{json} = eval { $JSON->decode($res->{body}) }
        if !ref $ct && $ct =~ m{^application/(?:[\w.+-]+\+)?json\b}i;
    return $res;
}

# The opt-in recorder: with KVAPI_OPENAPI_RECORD naming a file, every
# answer request() and raw() get is appended to it as one JSON line
# {file, method, uri, status, headers, body, req_type, req_body} (bodies as
# bytes), under a lock, from forked children too.  t/81-openapi.t checks
# each against docs/openapi.json.  A raw request line that does not parse
# is recorded with method and uri null.
my $RECORD_JSON = JSON::PP->new->utf8->canonical;

sub _record {
    my ($method, $uri, $res, $req_headers, $req_body) = @_;
    my $file = $ENV{KVAPI_OPENAPI_RECORD} or return;
    my ($type) = map { $req_headers->{$_} } grep { lc eq 'content-type' } keys %$req_headers;
    my $line = eval {
        $RECORD_JSON->encode({
            file => $0, method => $method, uri => $uri,
            status => $res->{status}, headers => $res->{headers}, body => $res->{body},
            req_type => $type, req_body => $req_body,
        }) . "\n";
    } or return Test::More::diag("KVAPI_OPENAPI_RECORD: cannot encode a record: $@");
    open my $fh, '>>:raw', $file
        or return Test::More::diag("KVAPI_OPENAPI_RECORD $file: $!");
    flock $fh, Fcntl::LOCK_EX();
    print {$fh} $line;
    close $fh;
}

sub _record_raw {
    my ($bytes, $res) = @_;
    my ($head, $body) = split /\r\n\r\n/, $bytes, 2;
    my ($method, $uri) = ($head // '') =~ m{\A([!#\$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/\d\.\d\r?(?:\n|\z)};
    my %h;
    for (split /\r\n/, $head // '') {
        $h{lc $1} = $2 if /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
    }
    undef $body unless defined $h{'content-length'} && $h{'content-length'} =~ /^\d+$/
        && length($body // '') == $h{'content-length'};
    _record($method, $uri, $res, { 'content-type' => $h{'content-type'} }, $body);
}

# Is this a whole response (headers, then Content-Length or chunked body)?
sub _complete {
    my ($data, $head) = @_;
    my $end = index $data, "\r\n\r\n";
    return 0 if $end < 0;
    my $hdr = substr $data, 0, $end;
    return _complete(substr($data, $end + 4), $head) if $hdr =~ m{\AHTTP/\S+ 1\d\d};
    return 1 if $head || $hdr =~ m{\AHTTP/\S+ (?:204|304)};
    my $body = substr $data, $end + 4;
    return length($body) >= $1 if $hdr =~ /^content-length:\s*(\d+)/im;
    return $body =~ /(?:^|\r\n)0\r\n(?:.*\r\n)?\r\n\z/s if $hdr =~ /^transfer-encoding:\s*chunked/im;
    return 0;    # until the server closes
}

sub _parse_raw {
    my ($data) = @_;
    # Interim 1xx answers (100 Continue) come before the real one.
    $data =~ s{\AHTTP/\S+ 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n}{}
        while $data =~ m{\AHTTP/\S+ 1\d\d};
    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    my ($status) = ($head // '') =~ m{\AHTTP/\d\.\d (\d{3})}
        or return {status => undef, headers => {}, body => $data, json => undef};
    my %h;
    for (split /\r\n/, $head) {
        my ($k, $v) = /^([^:\s]+):[ \t]*(.*?)[ \t]*$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? [ ref $h{$k} ? @{ $h{$k} } : $h{$k}, $v ] : $v;
    }
    $body //= '';
    $body = dechunk($body) if ($h{'transfer-encoding'} // '') =~ /chunked/i;
    return _response($status, \%h, $body);
}

# The payload of a body sent with Transfer-Encoding: chunked (also used
# by KVLoad).
sub dechunk {
    my ($rest) = @_;
    my $plain = '';
    while ($rest =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $n = hex $1;
        last if $n == 0;
        $plain .= substr $rest, 0, $n, '';
        $rest =~ s/\A\r\n//;
    }
    return $plain;
}

1;
