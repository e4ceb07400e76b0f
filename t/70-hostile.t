# Security hardening: a catalogue of hostile and malformed requests, one
# line each, driven by one loop.  Every case asserts the contract's exact
# answer (status, Content-Type, the whole JSON body, and WWW-Authenticate
# or Allow where they belong); at checkpoints and after the catalogue the
# server must still be healthy: /api/health answers "up", the known users'
# stored values read back byte for byte, and the data and users tables
# hold exactly the rows they held before (count and checksum), so no
# hostile request stored, changed or deleted anything, and no smuggled
# second request was processed.  The account routes of issue 14 (PATCH
# and DELETE /api/users/me, PUT /api/users/me/password, the refresh grant
# and unknown grant types) get their own wrong types, NULs, 1 MB strings
# and duplicate members; afterwards A's refresh token still rotates and no
# password was changed.  PATCH /api/data/{key} and ttl (issue 15) get
# theirs: wrong Content-Types, invalid JSON, null, NUL, duplicates, deep
# nesting, bodies over value_max and body_max, preconditions, other keys,
# and every wrong type and range of ttl on POST and PUT.  Then the SQL metacharacters and LIKE
# wildcards that the catalogue aims at the server are stored by a user of
# their own and must come back literally.
use strict;
use warnings;
use utf8;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(kpath show);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';
my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $BJ = 'application/json';
my $HEALTH = '{"status":"success","data":{"database":"up"}}';

# WWW-Authenticate (docs/decisions.md): without credentials, and with
# credentials that were refused.
my $WWW_NONE = 'Bearer realm="kvapi"';
my $WWW_BAD = 'Bearer realm="kvapi", error="invalid_token"';

# Allow: nginx's own 405 (TRACE, CONNECT) lists every API method; the
# worker's comes from its route table.
my $ALLOW_NGINX = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
my $ALLOW_KEY = 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS';
my $ALLOW_DATA = 'POST, GET, HEAD, OPTIONS';
my $ALLOW_REGISTER = 'POST, OPTIONS';
my $ALLOW_TOKEN = 'POST, DELETE, OPTIONS';
my $ALLOW_HEALTH = 'GET, HEAD, OPTIONS';



sub enc { my $t = $JSON->encode($_[0]); return $t }

# The rows of data and users (only those of users @$ids if given) as
# counts and SHA-256 checksums over every column a write changes, and
# whether the three tables still exist.  The checksums are taken here,
# over the rows in order: a GROUP_CONCAT of the megabyte values in SQL
# needs an internal temporary table, and dropping one crashed MariaDB
# 10.11.19 once (segfault in ha_maria::drop_table, the fresh machine's
# sanitizer run).
sub db_state {
    my ($st, $ids) = @_;
    my $in = $ids ? ' IN (' . join(',', @$ids) . ')' : '';
    my $sum = sub {
        my ($rows) = @_;
        return (scalar @$rows, @$rows ? sha256_hex(join '|', map { join ':', @$_ } @$rows) : '-');
    };
    my @d = $sum->($st->sql('SELECT user_id, HEX(k), HEX(v), version FROM data'
        . ($in ? " WHERE user_id$in" : '') . ' ORDER BY user_id, k'));
    my @u = $sum->($st->sql('SELECT id, HEX(username), HEX(email), password_hash, HEX(full_name) FROM users'
        . ($in ? " WHERE id$in" : '') . ' ORDER BY id'));
    my $t = $st->sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        . " AND table_name IN ('users', 'tokens', 'data')");
    return { data_rows => $d[0], data_sum => $d[1], user_rows => $u[0],
             user_sum => $u[1], tables => $t->[0][0] };
}

# A stack's health: /api/health, the snapshot reads byte for byte, the
# tables unchanged.  $h: {st, reads => [[token, path, body]], snap, and
# users => [ids] to look at those users' rows only}.
sub healthy {
    my ($h, $label) = @_;
    my $st = $h->{st};
    subtest "still healthy: $label" => sub {
        my $r = $st->request(GET => '/api/health');
        is $r->{status}, 200, 'health: 200';
        is $r->{headers}{'content-type'}, $CT, 'health: Content-Type';
        is $r->{body}, $HEALTH, 'health: database up';
        for (@{ $h->{reads} }) {
            my ($tok, $path, $body) = @$_;
            $r = $st->request(GET => $path, { headers => $st->auth($tok) });
            is $r->{status}, 200, "GET $path: 200";
            is $r->{body}, $body, "GET $path: byte for byte as stored";
        }
        is_deeply db_state($st, $h->{users}), $h->{snap},
            'data and users: same rows, same checksums; tables users, tokens, data exist';
        # multiwatch replaces a worker that died: the same pids mean no crash.
        is_deeply [ $st->worker_pids ], $h->{pids}, 'the same workers are running (none crashed)';
    };
}

# One request of the catalogue: a CODE ref (called with the stack), raw
# bytes for a socket, or {m, p, h, body} for HTTP::Tiny.
sub send_case {
    my ($st, $q) = @_;
    return $q->($st) if ref $q eq 'CODE';
    return $st->raw($q, 15) unless ref $q;
    return $st->request($q->{m} => $q->{p}, { headers => $q->{h} // {},
        defined $q->{body} ? (body => $q->{body}) : () });
}

# The expected answer: an error code of the contract, or {status, json}
# for a normal answer; an array ref lists answers the contract allows
# alike (nginx's BAD_REQUEST or a correct normal answer).  Extra checks:
# allow => exact Allow, www => exact WWW-Authenticate (INVALID_TOKEN
# defaults to the refused-credentials form).
sub check_case {
    my ($st, $r, $expect, $name, %x) = @_;
    my @alt = ref $expect eq 'ARRAY' ? @$expect : ($expect);
    my $status_of = sub { ref $_[0] ? $_[0]{status} : $KVTest::ERRORS{ $_[0] }[0] };
    my ($pick) = grep { $status_of->($_) == ($r->{status} // 0) } @alt;
    $pick //= $alt[0];
    return subtest $name => sub {
        if (ref $pick) {
            is $r->{status}, $pick->{status}, "status $pick->{status}";
            is $r->{headers}{'content-type'}, $CT, 'Content-Type';
            my $got = eval { $JSON->decode($r->{body}) };
            is_deeply $got, $pick->{json}, 'whole body'
                or diag 'body: ' . show($r->{body}, 100);
        } else {
            die "unknown code $pick" unless $KVTest::ERRORS{$pick};
            $st->error_is($r, $pick, $pick);
            my $www = $x{www} // ($pick eq 'INVALID_TOKEN' ? $WWW_BAD : undef);
            is $r->{headers}{'www-authenticate'}, $www, 'WWW-Authenticate' if defined $www;
            is $r->{headers}{allow}, $x{allow}, 'Allow' if $pick eq 'METHOD_NOT_ALLOWED';
        }
        if (defined $r->{raw}) {
            my $n = () = $r->{raw} =~ m{HTTP/1\.[01] [2-5]\d\d }g;
            is $n, 1, 'one answer on the wire' or diag 'raw answer: ' . show($r->{raw}, 100);
        }
    };
}

# What a case sends, for the diagnostics of a failure.
sub describe {
    my ($q) = @_;
    return 'code' if ref $q eq 'CODE';
    if (!ref $q) {
        my ($line) = $q =~ /\A([^\n]*)/;
        return 'raw: ' . show($line, 100) . ' (' . length($q) . ' bytes)';
    }
    my $h = join ', ', map { "$_: " . show($q->{h}{$_} =~ s/[A-Za-z0-9_-]{43}/<token>/r, 100) } sort keys %{ $q->{h} // {} };
    return "$q->{m} " . show($q->{p}, 100) . " [$h]" . (defined $q->{body} ? ' body: ' . show($q->{body}, 100) : '');
}

# The loop: every case, a health checkpoint every $every cases.
sub run_catalogue {
    my ($h, $every, @cases) = @_;
    my $n = 0;
    my %seen;
    for my $c (@cases) {
        my ($name, $expect, $q, %x) = @$c;
        die "duplicate case name: $name" if $seen{$name}++;
        check_case($h->{st}, send_case($h->{st}, $q), $expect, $name, %x)
            or diag 'request: ' . describe($q);
        healthy($h, "after case $n ($name)") if ++$n % $every == 0;
    }
    return $n;
}

# ---------------------------------------------------------------------------
# The main stack, its users and what they hold before the catalogue.

# The catalogue tries far more wrong logins on one user than the lock-out
# allows (t/22-lockout.t tests that).
my $s = KVTest->start(login_max_failures => 1000000);
my $V = $s->new_user('victim');
my $A = $s->new_user('atk');
my ($TA, $TV) = ($A->{token}, $V->{token});
my $A_a = { status => 200, json => { status => 'success', data => { key => 'a', value => 'mine' } } };
my $EMPTY_LIST = { status => 200, json => { status => 'success', data => { items => [], next_cursor => undef } } };

# The victim holds keys the catalogue's wildcards would match.
my @VICTIM = (
    [ 'a',           "victim's a" ],
    [ '%',           '100%' ],
    [ '_',           'under_score' ],
    [ "' OR '1'='1", "' OR '1'='1" ],
    [ 'a b',         'space' ],
    [ 'profile',     { name => 'Zoë 😀', tags => [ 'x', "y\"z\\" ], n => 1.5, ok => JSON::PP::true,
                       none => undef, deep => [ [ [ {} ] ] ] } ],
);
my ($U72, $P72);
my $TR;    # a revoked token of A's
my %H;     # the main stack's health record

subtest 'setup' => sub {
    for (@VICTIM) {
        my ($k, $v) = @$_;
        my $r = $s->request(POST => '/api/data', { headers => $s->auth($TV), json => { key => $k, value => $v } });
        is $r->{status}, 201, 'victim stores ' . show($k, 100) or diag $r->{body};
    }
    my $r = $s->request(POST => '/api/data', { headers => $s->auth($TA), json => { key => 'a', value => 'mine' } });
    is $r->{status}, 201, 'attacker stores a' or diag $r->{body};

    # A user whose password is exactly 72 bytes: P . "x" must not log in.
    $U72 = "p72_$$";
    $P72 = join '', map { chr(0x21 + ($_ * 7) % 94) } 1 .. 72;
    $r = $s->register(username => $U72, email => "$U72\@example.com", password => $P72, full_name => 'Seventy Two');
    is $r->{status}, 201, 'a 72-byte password is accepted' or diag $r->{body};
    $r = $s->request(POST => '/api/token', { json => { username => $U72, password => $P72 } });
    is $r->{status}, 200, 'and logs in' or diag $r->{body};

    # A second token of A's, revoked.
    $r = $s->request(POST => '/api/token', { json => { username => $A->{username}, password => $A->{password} } });
    is $r->{status}, 200, 'a second token for A' or diag $r->{body};
    $TR = $r->{json}{data}{access_token};
    $r = $s->request(DELETE => '/api/token', { headers => $s->auth($TR) });
    is $r->{status}, 200, 'DELETE /api/token revokes it';
    is_deeply $r->{json}, { status => 'success', message => 'Access token revoked.' }, 'revoke: whole body'
        or diag $r->{body};

    my @reads;
    for (@VICTIM) {
        my ($k, $v) = @$_;
        $r = $s->request(GET => kpath($k), { headers => $s->auth($TV) });
        is_deeply $JSON->decode($r->{body}), { status => 'success', data => { key => $k, value => $v } },
            'victim reads back ' . show($k, 100);
        push @reads, [ $TV, kpath($k), $r->{body} ];
    }
    $r = $s->request(GET => '/api/data/a', { headers => $s->auth($TA) });
    is_deeply $JSON->decode($r->{body}), $A_a->{json}, 'attacker reads back a';
    push @reads, [ $TA, '/api/data/a', $r->{body} ];
    %H = (st => $s, reads => \@reads, pids => [ $s->worker_pids ]);
    ok scalar @{ $H{pids} }, 'workers: ' . join ' ', @{ $H{pids} };
    $H{snap} = db_state($s);
    $H{ids} = [ map { $_->[0] } @{ $s->sql('SELECT id FROM users ORDER BY id') } ];
    $H{snap_ids} = db_state($s, $H{ids});
    is_deeply $H{snap_ids}, $H{snap}, 'snapshot: the same whole or restricted to the users of now';
    is $H{snap}{data_rows}, @VICTIM + 1, 'snapshot: ' . (@VICTIM + 1) . ' rows';
    is $H{snap}{tables}, 3, 'snapshot: three tables';
};

# The account routes (issue 14): a refresh token of A's, and a token of
# the user whose password is exactly 72 bytes.
my ($RA, $SA, $T72);
subtest 'setup: sessions' => sub {
    my $r = $s->request(POST => '/api/token', { json => { username => $A->{username}, password => $A->{password} } });
    is $r->{status}, 200, 'A logs in again' or diag $r->{body};
    ($RA, $SA) = @{ $r->{json}{data} }{qw(refresh_token session_id)};
    like $RA // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'a refresh token of A\'s';
    $RA //= 'R' x 43;
    $r = $s->request(POST => '/api/token', { json => { username => $U72, password => $P72 } });
    is $r->{status}, 200, 'the 72-byte user logs in' or diag $r->{body};
    $T72 = $r->{json}{data}{access_token};
};

# ---------------------------------------------------------------------------
# Request builders.

sub hdrs {
    my ($tok, $ct) = @_;
    return { defined $tok ? (Authorization => "Bearer $tok") : (), defined $ct ? ('Content-Type' => $ct) : () };
}
# A's data request; a body goes as application/json.
sub D { my ($m, $p, $body) = @_; return { m => $m, p => $p, h => hdrs($TA, defined $body ? $BJ : undef), body => $body } }
# No credentials, application/json (register, token).
sub N { my ($m, $p, $body) = @_; return { m => $m, p => $p, h => hdrs(undef, $BJ), body => $body } }
# Content-Type $ct (undef: none), with A's token when $auth.
sub CT { my ($ct, $m, $p, $body, $auth) = @_; return { m => $m, p => $p, h => hdrs($auth ? $TA : undef, $ct), body => $body } }
# GET /api/data/a with this Authorization header (undef: none).
sub AZ { my ($authz) = @_; return { m => 'GET', p => '/api/data/a', h => { defined $authz ? (Authorization => $authz) : () } } }
# POST /api/data and PUT /api/data/a with A's token and a raw JSON text.
sub POSTD { D(POST => '/api/data', $_[0]) }
sub PUTA { D(PUT => '/api/data/a', $_[0]) }

my $seq = 0;
# PATCH /api/data/a (A's "mine") with a raw body, as a merge patch (or
# Content-Type $ct), with more headers %h.
my $MPJ = 'application/merge-patch+json';
sub PATCHA { my ($body, $ct, %h) = @_; return { m => 'PATCH', p => '/api/data/a', h => { %{ hdrs($TA, $ct // $MPJ) }, %h }, body => $body } }

# A register body: valid unique fields, overridden by %o (undef: null).
sub REG {
    my (%o) = @_;
    my $u = sprintf 'h70_%d_%d', $$, ++$seq;
    return N(POST => '/api/register', enc({ username => $u, email => "$u\@example.com",
        password => 'correct horse 1', full_name => 'Hostile', %o }));
}
# A register body as raw text: USER stands for a fresh username.
sub REGRAW {
    my ($t) = @_;
    my $u = sprintf 'h70_%d_%d', $$, ++$seq;
    $t =~ s/USER/$u/g;
    return N(POST => '/api/register', $t);
}
# A token request: A's valid credentials overridden by %o.
sub TOK { my (%o) = @_; return N(POST => '/api/token', enc({ username => $A->{username}, password => $A->{password}, %o })) }
sub LOGIN { my ($u, $p) = @_; return N(POST => '/api/token', enc({ username => $u, password => $p })) }
# The account routes with a raw JSON body and A's token (or $tok).
sub ME { my ($m, $p, $body, $tok) = @_; return { m => $m, p => $p, h => hdrs($tok // $TA, $BJ), body => $body } }
sub PATCHME { ME(PATCH => '/api/users/me', @_) }
sub CHPW { ME(PUT => '/api/users/me/password', @_) }
sub DELME { ME(DELETE => '/api/users/me', @_) }
# The refresh grant with refresh_token $v (a raw JSON text with GRANTRAW).
sub GRANT { N(POST => '/api/token', enc({ grant_type => 'refresh_token', refresh_token => $_[0] })) }
sub GRANTRAW { N(POST => '/api/token', $_[0]) }

# Raw requests: a head (request line and headers, no final CRLF) and a body.
my $HOST = "Host: 127.0.0.1\r\n";
my $AUTH_A = "Authorization: Bearer $TA\r\n";
sub RAW {
    my ($line, $headers, $body) = @_;
    return "$line\r\n$HOST" . ($headers // '') . "Connection: close\r\n\r\n" . ($body // '');
}
# The same, keeping the connection open: a request smuggled behind it
# would be run on it.
sub RAWK {
    my ($line, $headers, $body) = @_;
    return "$line\r\n$HOST" . ($headers // '') . "\r\n" . ($body // '');
}
# A complete request that would store key $k for A if it were ever run.
sub SMUGGLED {
    my ($k) = @_;
    my $b = qq({"key":"$k","value":"smuggled"});
    return "POST /api/data HTTP/1.1\r\n$HOST$AUTH_A" . "Content-Type: application/json\r\nContent-Length: "
        . length($b) . "\r\n\r\n$b";
}
my $SMUG_KEYS = 0;
sub SMUG { return 'smug' . ++$SMUG_KEYS }

my $BIG = 1114112;    # body_max's default
my $EMAIL255 = ('l' x 60) . '@' . join('.', ('d' x 60) x 3) . '.' . ('c' x 11);
die 'bad EMAIL255' unless length $EMAIL255 == 255;
my $DEEP_A = '[' x 10000 . ']' x 10000;
my $DEEP_O = '{"a":' x 10000 . '1' . '}' x 10000;
my $CHUNK = 'x' x 65536;
my $CHUNKED_BIG = join('', map { sprintf "%x\r\n%s\r\n", 65536, $CHUNK } 1 .. 18) . "0\r\n\r\n";
(my $TA_BAD = $TA) =~ s/.\z/substr($TA, -1) eq 'A' ? 'B' : 'A'/e;
(my $V_WILD = $V->{username}) =~ s/^./_/;

my @CATALOGUE = (
    # --- malformed and truncated JSON; top-level arrays and scalars
    [ 'POST: truncated after a colon',          'INVALID_JSON', POSTD('{"key":"h1","value":') ],
    [ 'POST: truncated inside a member name',   'INVALID_JSON', POSTD('{"key":"h1","val') ],
    [ 'POST: truncated after a backslash',      'INVALID_JSON', POSTD('{"key":"h1","value":"a\\') ],
    [ 'POST: truncated inside \u escape',       'INVALID_JSON', POSTD('{"key":"h1","value":"\u00') ],
    [ 'POST: only {"',                          'INVALID_JSON', POSTD('{"') ],
    [ 'POST: empty body',                       'INVALID_JSON', POSTD('') ],
    [ 'POST: top-level array',                  'INVALID_JSON', POSTD('[{"key":"h1","value":1}]') ],
    [ 'POST: top-level string',                 'INVALID_JSON', POSTD('"h1"') ],
    [ 'POST: top-level number',                 'INVALID_JSON', POSTD('42') ],
    [ 'POST: top-level null',                   'INVALID_JSON', POSTD('null') ],
    [ 'POST: top-level true',                   'INVALID_JSON', POSTD('true') ],
    [ 'POST: object then garbage',              'INVALID_JSON', POSTD('{"key":"h1","value":1}]') ],
    [ 'PUT: top-level array',                   'INVALID_JSON', PUTA('[{"value":"pwned"}]') ],
    [ 'PUT: truncated array value',             'INVALID_JSON', PUTA('{"value":[1,2') ],
    [ 'PUT: top-level string',                  'INVALID_JSON', PUTA('"pwned"') ],
    [ 'register: top-level array',              'INVALID_JSON', REGRAW('[{"username":"USER","email":"USER@example.com","password":"correct horse 1","full_name":"F"}]') ],
    [ 'register: truncated',                    'INVALID_JSON', REGRAW('{"username":"USER","email":"USER@example.com","password":"correct horse 1","full_name":"F"') ],
    [ 'token: top-level string',                'INVALID_JSON', N(POST => '/api/token', '"x"') ],
    [ 'token: truncated',                       'INVALID_JSON', N(POST => '/api/token', qq({"username":"$A->{username}","password":"$A->{password}")) ],

    # --- wrong field types
    [ 'register: username a number',           'INVALID_REQUEST', REG(username => 123456) ],
    [ 'register: username true',               'INVALID_REQUEST', REG(username => JSON::PP::true) ],
    [ 'register: email null',                  'INVALID_REQUEST', REG(email => undef) ],
    [ 'register: email an array',              'INVALID_REQUEST', REG(email => ['x@example.com']) ],
    [ 'register: full_name an object',         'INVALID_REQUEST', REG(full_name => { first => 'F' }) ],
    [ 'register: password a number',           'INVALID_REQUEST', REG(password => 123456789) ],
    [ 'register: password an array',           'INVALID_REQUEST', REG(password => ['correct horse 1']) ],
    [ 'register: age a string',                'INVALID_AGE', REG(age => '30') ],
    [ 'register: age true',                    'INVALID_AGE', REG(age => JSON::PP::true) ],
    [ 'register: age an object',               'INVALID_AGE', REG(age => { v => 30 }) ],
    [ 'register: gender a number',             'INVALID_GENDER', REG(gender => 5) ],
    [ 'register: gender an array',             'INVALID_GENDER', REG(gender => ['f']) ],
    [ 'register: gender false',                'INVALID_GENDER', REG(gender => JSON::PP::false) ],
    [ 'token: username a number',              'MISSING_FIELDS', TOK(username => 1) ],
    [ 'token: username an array',              'MISSING_FIELDS', TOK(username => [ $A->{username} ]) ],
    [ 'token: password null',                  'MISSING_FIELDS', TOK(password => undef) ],
    [ 'token: password an object',             'MISSING_FIELDS', TOK(password => { p => $A->{password} }) ],
    [ 'token: password false',                 'MISSING_FIELDS', TOK(password => JSON::PP::false) ],
    [ 'POST: key a number',                    'INVALID_KEY', POSTD('{"key":1,"value":1}') ],
    [ 'POST: key true',                        'INVALID_KEY', POSTD('{"key":true,"value":1}') ],
    [ 'POST: key null',                        'INVALID_KEY', POSTD('{"key":null,"value":1}') ],
    [ 'POST: key an object',                   'INVALID_KEY', POSTD('{"key":{"k":"a"},"value":1}') ],
    [ 'POST: key an array',                    'INVALID_KEY', POSTD('{"key":["a"],"value":1}') ],
    [ 'POST: value null',                      'INVALID_VALUE', POSTD('{"key":"h2","value":null}') ],
    [ 'POST: value missing',                   'INVALID_VALUE', POSTD('{"key":"h2","valu":1}') ],
    [ 'PUT: value null',                       'INVALID_VALUE', PUTA('{"value":null}') ],
    [ 'PUT: value missing',                    'INVALID_VALUE', PUTA('{"key":"a"}') ],

    # --- invalid UTF-8 and raw NUL bytes: INVALID_JSON
    [ 'POST: overlong / (C0 AF) in key',       'INVALID_JSON', POSTD(qq({"key":"h\xC0\xAF","value":1})) ],
    [ 'POST: overlong 3-byte (E0 80 AF)',      'INVALID_JSON', POSTD(qq({"key":"h3","value":"\xE0\x80\xAF"})) ],
    [ 'POST: overlong NUL (C0 80)',            'INVALID_JSON', POSTD(qq({"key":"h\xC0\x80","value":1})) ],
    [ 'POST: UTF-8 surrogate (ED A0 80)',      'INVALID_JSON', POSTD(qq({"key":"h4","value":"\xED\xA0\x80"})) ],
    [ 'POST: surrogate pair in UTF-8',         'INVALID_JSON', POSTD(qq({"key":"h\xED\xA0\xBD\xED\xB8\x80","value":1})) ],
    [ 'POST: 0xFF in key',                     'INVALID_JSON', POSTD(qq({"key":"h\xFF","value":1})) ],
    [ 'POST: 0xFE in value',                   'INVALID_JSON', POSTD(qq({"key":"h5","value":"\xFE"})) ],
    [ 'POST: truncated sequence (E2 98)',      'INVALID_JSON', POSTD(qq({"key":"h6","value":"\xE2\x98"})) ],
    [ 'POST: lone continuation byte',          'INVALID_JSON', POSTD(qq({"key":"h\x80","value":1})) ],
    [ 'POST: above U+10FFFF (F4 90 80 80)',    'INVALID_JSON', POSTD(qq({"key":"h7","value":"\xF4\x90\x80\x80"})) ],
    [ 'POST: raw NUL in key',                  'INVALID_JSON', POSTD(qq({"key":"a\x00b","value":1})) ],
    [ 'POST: raw NUL in value',                'INVALID_JSON', POSTD(qq({"key":"h8","value":"a\x00b"})) ],
    [ 'POST: raw NUL between members',         'INVALID_JSON', POSTD(qq({"key":"h9",\x00"value":1})) ],
    [ 'PUT: 0xFF in value',                    'INVALID_JSON', PUTA(qq({"value":"pwned\xFF"})) ],
    [ 'PUT: raw NUL in value',                 'INVALID_JSON', PUTA(qq({"value":"pwned\x00"})) ],
    [ 'register: 0xFF in username',            'INVALID_JSON', REGRAW(qq({"username":"USER\xFF","email":"USER\@example.com","password":"correct horse 1","full_name":"F"})) ],
    [ 'register: overlong in full_name',       'INVALID_JSON', REGRAW(qq({"username":"USER","email":"USER\@example.com","password":"correct horse 1","full_name":"F\xC1\xBF"})) ],
    [ 'register: raw NUL in password',         'INVALID_JSON', REGRAW(qq({"username":"USER","email":"USER\@example.com","password":"correct\x00horse 1","full_name":"F"})) ],
    [ 'token: surrogate in password',          'INVALID_JSON', N(POST => '/api/token', qq({"username":"$A->{username}","password":"\xED\xB0\x80"})) ],
    [ 'token: raw NUL after username',         'INVALID_JSON', N(POST => '/api/token', qq({"username":"$A->{username}\x00x","password":"$A->{password}"})) ],

    # --- \u0000 escapes: the member's own error
    [ 'POST: \u0000 in key',                   'INVALID_KEY', POSTD('{"key":"a\u0000b","value":1}') ],
    [ 'POST: key "a" + \u0000 (truncation)',   'INVALID_KEY', POSTD('{"key":"a\u0000","value":"pwned"}') ],
    [ 'POST: \u0000 in value',                 'INVALID_VALUE', POSTD('{"key":"h10","value":"x\u0000y"}') ],
    [ 'POST: \u0000 deep inside value',        'INVALID_VALUE', POSTD('{"key":"h11","value":{"x":[1,"\u0000"]}}') ],
    [ 'POST: \u0000 in a value member name',   'INVALID_VALUE', POSTD('{"key":"h12","value":{"a\u0000":1}}') ],
    [ 'PUT: \u0000 in value',                  'INVALID_VALUE', PUTA('{"value":"pwned\u0000"}') ],
    [ 'register: \u0000 in username',          'INVALID_REQUEST', REG(username => "ab\0cd") ],
    [ 'register: \u0000 in email',             'INVALID_REQUEST', REG(email => "nul\0x\@example.com") ],
    [ 'register: \u0000 in full_name',         'INVALID_REQUEST', REG(full_name => "Nul\0Name") ],
    [ 'register: \u0000 in password',          'INVALID_PASSWORD', REG(password => "correct horse\0tail") ],
    [ 'register: \u0000 in gender',            'INVALID_GENDER', REG(gender => "f\0") ],

    # --- control characters in keys (C0, DEL, C1), body and URL
    [ 'POST: key with \u0001',                 'INVALID_KEY', POSTD('{"key":"a\u0001","value":1}') ],
    [ 'POST: key with \u001f',                 'INVALID_KEY', POSTD('{"key":"\u001f","value":1}') ],
    [ 'POST: key with \n',                     'INVALID_KEY', POSTD('{"key":"a\nb","value":1}') ],
    [ 'POST: key with \r\n (header split)',    'INVALID_KEY', POSTD('{"key":"a\r\nSet-Cookie: x=1","value":1}') ],
    [ 'POST: key with \u007f',                 'INVALID_KEY', POSTD('{"key":"a\u007f","value":1}') ],
    [ 'POST: key with raw DEL',                'INVALID_KEY', POSTD(qq({"key":"a\x7F","value":1})) ],
    [ 'POST: key with \u0080',                 'INVALID_KEY', POSTD('{"key":"a\u0080","value":1}') ],
    [ 'POST: key with raw U+0085 (C2 85)',     'INVALID_KEY', POSTD(qq({"key":"a\xC2\x85","value":1})) ],
    [ 'POST: key with \u009f',                 'INVALID_KEY', POSTD('{"key":"\u009f","value":1}') ],
    [ 'GET: URL key %01',                      'INVALID_KEY', D(GET => '/api/data/a%01') ],
    [ 'GET: URL key %1F',                      'INVALID_KEY', D(GET => '/api/data/%1F') ],
    [ 'GET: URL key %7F',                      'INVALID_KEY', D(GET => '/api/data/a%7F') ],
    [ 'GET: URL key %C2%80',                   'INVALID_KEY', D(GET => '/api/data/a%C2%80') ],
    [ 'GET: URL key %C2%9F',                   'INVALID_KEY', D(GET => '/api/data/a%C2%9F') ],
    [ 'DELETE: URL key a%0D%0A',               'INVALID_KEY', D(DELETE => '/api/data/a%0D%0A') ],
    [ 'GET: raw 0x01 byte in the URL',         'BAD_REQUEST', RAW("GET /api/data/a\x01 HTTP/1.1", $AUTH_A) ],
    [ 'GET: raw space in the URL',             'BAD_REQUEST', RAW('GET /api/data/a b HTTP/1.1', $AUTH_A) ],

    # --- over-long fields
    [ 'register: username of 65',              'INVALID_REQUEST', REG(username => 'u' x 65) ],
    [ 'register: username of 100000',          'INVALID_REQUEST', REG(username => 'u' x 100000) ],
    [ 'register: email of 255',                'INVALID_REQUEST', REG(email => $EMAIL255) ],
    [ 'register: full_name of 129',            'INVALID_REQUEST', REG(full_name => 'f' x 129) ],
    [ 'register: gender of 33',                'INVALID_GENDER', REG(gender => 'g' x 33) ],
    [ 'POST: key of 256 bytes',                'INVALID_KEY', POSTD(enc({ key => 'k' x 256, value => 1 })) ],
    [ 'POST: key of 128 × é (256 bytes)',      'INVALID_KEY', POSTD(enc({ key => 'é' x 128, value => 1 })) ],
    [ 'POST: key of 100000 bytes',             'INVALID_KEY', POSTD(enc({ key => 'k' x 100000, value => 1 })) ],
    [ 'token: username of 100000',             'INVALID_CREDENTIALS', TOK(username => 'u' x 100000) ],

    # --- duplicate member names
    [ 'POST: duplicate key',                   'INVALID_JSON', POSTD('{"key":"h13","key":"h14","value":1}') ],
    [ 'POST: duplicate value',                 'INVALID_JSON', POSTD('{"key":"h15","value":1,"value":2}') ],
    [ 'POST: duplicate spelled with escapes',  'INVALID_JSON', POSTD('{"key":"h16","k\u0065y":"a","value":1}') ],
    [ 'POST: duplicate nested in value',       'INVALID_JSON', POSTD('{"key":"h17","value":{"x":1,"x":2}}') ],
    [ 'POST: duplicate deep in value',         'INVALID_JSON', POSTD('{"key":"h18","value":[[{"y":{"x":1,"z":0,"x":1}}]]}') ],
    [ 'PUT: duplicate value',                  'INVALID_JSON', PUTA('{"value":"pwned","value":"pwned"}') ],
    [ 'PUT: duplicate nested in value',        'INVALID_JSON', PUTA('{"value":{"a":1,"a":1}}') ],
    [ 'register: duplicate username',          'INVALID_JSON', REGRAW('{"username":"USER","username":"USER2","email":"USER@example.com","password":"correct horse 1","full_name":"F"}') ],
    [ 'token: duplicate username',             'INVALID_JSON', N(POST => '/api/token', qq({"username":"nobody","username":"$A->{username}","password":"$A->{password}"})) ],

    # --- deep nesting
    [ 'POST: 10000 nested arrays',             'INVALID_JSON', POSTD(qq({"key":"h19","value":$DEEP_A})) ],
    [ 'POST: 10000 nested objects',            'INVALID_JSON', POSTD(qq({"key":"h20","value":$DEEP_O})) ],
    [ 'POST: 10000 unclosed arrays',           'INVALID_JSON', POSTD(qq({"key":"h21","value":) . '[' x 10000) ],
    [ 'PUT: 10000 nested arrays',              'INVALID_JSON', PUTA(qq({"value":$DEEP_A})) ],
    [ 'register: 10000 nested in a field',     'INVALID_JSON', REGRAW(qq({"username":"USER","email":"USER\@example.com","password":"correct horse 1","full_name":"F","x":$DEEP_A})) ],
    [ 'token: 10000 nested in a field',        'INVALID_JSON', N(POST => '/api/token', qq({"username":"$A->{username}","password":"$A->{password}","x":$DEEP_O})) ],

    # --- bodies over body_max
    [ 'POST: Content-Length body_max+1, short body', 'PAYLOAD_TOO_LARGE',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: " . ($BIG + 1) . "\r\n", '{"key":"h22"') ],
    [ 'PUT: Content-Length 99999999999',       'PAYLOAD_TOO_LARGE',
      RAW('PUT /api/data/a HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: 99999999999\r\n", '{"value":') ],
    [ 'register: Content-Length 2 MB',         'PAYLOAD_TOO_LARGE',
      RAW('POST /api/register HTTP/1.1', "Content-Type: application/json\r\nContent-Length: 2000000\r\n", '{') ],
    [ 'token: Content-Length 2 MB, Expect: 100-continue', 'PAYLOAD_TOO_LARGE',
      RAW('POST /api/token HTTP/1.1', "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n") ],
    [ 'POST: a real body of body_max+1 bytes', 'PAYLOAD_TOO_LARGE',
      POSTD(do { my $t = '{"key":"h23","value":"' . 'x' x ($BIG - 25) . '"}'; $t . ' ' x ($BIG + 1 - length $t) }) ],
    [ 'POST: chunked, no Content-Length, 1.2 MB', 'PAYLOAD_TOO_LARGE',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", $CHUNKED_BIG) ],
    [ 'POST: chunked, one chunk announcing 2 MB', 'PAYLOAD_TOO_LARGE',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "200000\r\n{\"key\":") ],
    [ 'POST: Content-Length 2^64 (overflow)',  'BAD_REQUEST',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: 18446744073709551616\r\n", '{}') ],
    [ 'POST: Content-Length -1',               'BAD_REQUEST',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: -1\r\n", '{}') ],
    [ 'POST: chunk size overflowing',          'BAD_REQUEST',
      RAW('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "FFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n") ],

    # --- wrong or missing Content-Type
    [ 'POST: text/plain',                      'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', POST => '/api/data', '{"key":"h24","value":1}', 1) ],
    [ 'POST: multipart/form-data',             'UNSUPPORTED_MEDIA_TYPE', CT('multipart/form-data; boundary=zz', POST => '/api/data',
        qq(--zz\r\nContent-Disposition: form-data; name="key"\r\n\r\nh25\r\n--zz--\r\n), 1) ],
    [ 'POST: x-www-form-urlencoded',           'UNSUPPORTED_MEDIA_TYPE', CT('application/x-www-form-urlencoded', POST => '/api/data', 'key=h26&value=1', 1) ],
    [ 'POST: application/json; charset=latin1', 'UNSUPPORTED_MEDIA_TYPE', CT('application/json; charset=latin1', POST => '/api/data', '{"key":"h27","value":1}', 1) ],
    [ 'POST: no Content-Type',                 'UNSUPPORTED_MEDIA_TYPE', CT(undef, POST => '/api/data', '{"key":"h28","value":1}', 1) ],
    [ 'POST: text/html; x=application/json',   'UNSUPPORTED_MEDIA_TYPE', CT('text/html; x=application/json', POST => '/api/data', '{"key":"h29","value":1}', 1) ],
    [ 'POST: application/jsonp',               'UNSUPPORTED_MEDIA_TYPE', CT('application/jsonp', POST => '/api/data', '{"key":"h30","value":1}', 1) ],
    [ 'PUT: no Content-Type',                  'UNSUPPORTED_MEDIA_TYPE', CT(undef, PUT => '/api/data/a', '{"value":"pwned"}', 1) ],
    [ 'PUT: text/plain',                       'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', PUT => '/api/data/a', '{"value":"pwned"}', 1) ],
    [ 'register: text/plain',                  'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', POST => '/api/register',
        '{"username":"h70ct1","email":"h70ct1@example.com","password":"correct horse 1","full_name":"F"}') ],
    [ 'register: x-www-form-urlencoded',       'UNSUPPORTED_MEDIA_TYPE', CT('application/x-www-form-urlencoded', POST => '/api/register',
        'username=h70ct2&email=h70ct2%40example.com&password=correct+horse+1&full_name=F') ],
    [ 'token: multipart/form-data',            'UNSUPPORTED_MEDIA_TYPE', CT('multipart/form-data; boundary=zz', POST => '/api/token',
        qq(--zz\r\nContent-Disposition: form-data; name="username"\r\n\r\n$A->{username}\r\n--zz--\r\n)) ],
    [ 'token: no Content-Type',                'UNSUPPORTED_MEDIA_TYPE', CT(undef, POST => '/api/token',
        enc({ username => $A->{username}, password => $A->{password} })) ],

    # --- Authorization variants
    [ 'auth: missing',                         'INVALID_TOKEN', AZ(undef), www => $WWW_NONE ],
    [ 'auth: empty',                           'INVALID_TOKEN', RAW('GET /api/data/a HTTP/1.1', "Authorization: \r\n"), www => $WWW_NONE ],
    [ 'auth: "Bearer"',                        'INVALID_TOKEN', AZ('Bearer') ],
    [ 'auth: "Bearer " (trailing space)',      'INVALID_TOKEN', RAW('GET /api/data/a HTTP/1.1', "Authorization: Bearer \r\n") ],
    [ 'auth: "Bearer  x"',                     'INVALID_TOKEN', AZ('Bearer  x') ],
    [ 'auth: "bearer x"',                      'INVALID_TOKEN', AZ('bearer x') ],
    [ 'auth: Basic',                           'INVALID_TOKEN', AZ('Basic dXNlcjpwYXNz') ],
    [ 'auth: a 10 KB token',                   'INVALID_TOKEN', AZ('Bearer ' . 'A' x 10240) ],
    [ 'auth: token + trailing junk',           'INVALID_TOKEN', AZ("Bearer ${TA}x") ],
    [ 'auth: token + space + junk',            'INVALID_TOKEN', AZ("Bearer $TA junk") ],
    [ 'auth: token + ";"',                     'INVALID_TOKEN', AZ("Bearer $TA;") ],
    [ 'auth: token + "=" padding',             'INVALID_TOKEN', AZ("Bearer $TA=") ],
    [ 'auth: tab instead of space',            'INVALID_TOKEN', RAW('GET /api/data/a HTTP/1.1', "Authorization: Bearer\t$TA\r\n") ],
    [ 'auth: no space ("Bearer<token>")',      'INVALID_TOKEN', AZ("Bearer$TA") ],
    [ 'auth: two tokens, comma',               'INVALID_TOKEN', AZ("Bearer $TA, Bearer $TA") ],
    [ 'auth: two tokens, space',               'INVALID_TOKEN', AZ("Bearer $TA $TA") ],
    [ 'auth: scheme "Token"',                  'INVALID_TOKEN', AZ("Token $TA") ],
    [ 'auth: truncated token (42 chars)',      'INVALID_TOKEN', AZ('Bearer ' . substr($TA, 0, 42)) ],
    [ 'auth: last character changed',          'INVALID_TOKEN', AZ("Bearer $TA_BAD") ],
    [ 'auth: 43 chars never issued',           'INVALID_TOKEN', AZ('Bearer ' . 'A' x 43) ],
    [ "auth: \"' OR '1'='1\"",                 'INVALID_TOKEN', AZ("Bearer ' OR '1'='1") ],
    [ 'auth: revoked token',                   'INVALID_TOKEN', AZ("Bearer $TR") ],
    [ 'auth: revoked token, DELETE /api/token', 'INVALID_TOKEN', { m => 'DELETE', p => '/api/token', h => hdrs($TR) } ],
    [ 'auth: revoked token, POST /api/data',   'INVALID_TOKEN', { m => 'POST', p => '/api/data', h => hdrs($TR, $BJ), body => '{"key":"h31","value":1}' } ],
    [ 'auth: token in the query string only',  'INVALID_TOKEN', { m => 'GET', p => "/api/data/a?access_token=$TA" }, www => $WWW_NONE ],
    [ 'auth: missing on POST with a bad body', 'INVALID_TOKEN', CT('text/plain', POST => '/api/data', '{'), www => $WWW_NONE ],
    [ 'auth: missing on DELETE /api/token',    'INVALID_TOKEN', { m => 'DELETE', p => '/api/token' }, www => $WWW_NONE ],
    [ 'auth: two Authorization headers',       'BAD_REQUEST', RAW('GET /api/data/a HTTP/1.1', "${AUTH_A}Authorization: Bearer $TV\r\n") ],
    [ 'auth: raw NUL after the token',         'BAD_REQUEST', RAW('GET /api/data/a HTTP/1.1', "Authorization: Bearer $TA\x00\r\n") ],
    [ 'auth: two spaces (valid, decisions.md)', $A_a, AZ("Bearer  $TA") ],
    [ 'auth: "BEARER" (valid, any case)',      $A_a, AZ("BEARER $TA") ],

    # --- SQL metacharacters and LIKE wildcards (A holds only "a"; V holds %, _, ...)
    [ "register: username \"' OR '1'='1\"",    'INVALID_REQUEST', REG(username => "' OR '1'='1") ],
    [ 'register: username "%%%"',              'INVALID_REQUEST', REG(username => '%%%') ],
    [ 'register: username "a\"; DROP TABLE users; --"', 'INVALID_REQUEST', REG(username => 'a"; DROP TABLE users; --') ],
    [ 'login: username "%"',                   'INVALID_CREDENTIALS', LOGIN('%', $V->{password}) ],
    [ 'login: username "_%"',                  'INVALID_CREDENTIALS', LOGIN('_%', $V->{password}) ],
    [ "login: \"' OR '1'='1\" twice",          'INVALID_CREDENTIALS', LOGIN("' OR '1'='1", "' OR '1'='1") ],
    [ "login: \"' OR 1=1 -- \"",               'INVALID_CREDENTIALS', LOGIN("' OR 1=1 -- ", 'x') ],
    [ 'login: victim name with _ wildcard',    'INVALID_CREDENTIALS', LOGIN($V_WILD, $V->{password}) ],
    [ 'login: victim name prefix + %',         'INVALID_CREDENTIALS', LOGIN(substr($V->{username}, 0, 6) . '%', $V->{password}) ],
    [ 'login: victim name + trailing space',   'INVALID_CREDENTIALS', LOGIN("$V->{username} ", $V->{password}) ],
    [ "login: victim, password \"' OR '1'='1\"", 'INVALID_CREDENTIALS', LOGIN($V->{username}, "' OR '1'='1") ],
    [ 'login: username "\\"',                  'INVALID_CREDENTIALS', LOGIN('\\', 'x') ],
    [ 'login: "\"; DROP TABLE users; --"',     'INVALID_CREDENTIALS', LOGIN('"; DROP TABLE users; --', 'x') ],
    [ 'GET key % (only "a" exists)',           'KEY_NOT_FOUND', D(GET => '/api/data/%25') ],
    [ 'GET key %%',                            'KEY_NOT_FOUND', D(GET => '/api/data/%25%25') ],
    [ 'GET key _',                             'KEY_NOT_FOUND', D(GET => '/api/data/_') ],
    [ 'GET key a%',                            'KEY_NOT_FOUND', D(GET => '/api/data/a%25') ],
    [ 'GET key "a " (no PAD SPACE match)',     'KEY_NOT_FOUND', D(GET => '/api/data/a%20') ],
    [ 'GET key A (no case folding)',           'KEY_NOT_FOUND', D(GET => '/api/data/A') ],
    [ 'GET key \\',                            'KEY_NOT_FOUND', D(GET => '/api/data/%5C') ],
    [ "GET key \"' OR '1'='1\"",               'KEY_NOT_FOUND', D(GET => kpath("' OR '1'='1")) ],
    [ "GET key \"' OR 1=1 --\"",               'KEY_NOT_FOUND', D(GET => kpath("a' OR 1=1 -- ")) ],
    [ 'PUT key %',                             'KEY_NOT_FOUND', D(PUT => '/api/data/%25', '{"value":"pwned"}') ],
    [ "PUT key \"a' OR '1'='1\"",              'KEY_NOT_FOUND', D(PUT => kpath("a' OR '1'='1"), '{"value":"pwned"}') ],
    [ 'DELETE key _',                          'KEY_NOT_FOUND', D(DELETE => '/api/data/_') ],
    [ 'DELETE key "%"; DROP TABLE data; --"',  'KEY_NOT_FOUND', D(DELETE => kpath('%"; DROP TABLE data; --')) ],
    [ 'list prefix=% (literal)',               $EMPTY_LIST, D(GET => '/api/data?prefix=%25') ],
    [ 'list prefix=_ (literal)',               $EMPTY_LIST, D(GET => '/api/data?prefix=_') ],
    [ 'list prefix=\\',                        $EMPTY_LIST, D(GET => '/api/data?prefix=%5C') ],
    [ "list prefix=' OR '1'='1",               $EMPTY_LIST, D(GET => '/api/data?prefix=%27%20OR%20%271%27%3D%271') ],
    [ "list prefix=%' OR 1=1 --",              $EMPTY_LIST, D(GET => '/api/data?prefix=%25%27+OR+1%3D1+--+') ],
    [ 'list prefix=a: only A\'s own a',        { status => 200, json => { status => 'success',
        data => { items => [ { key => 'a', value => 'mine' } ], next_cursor => undef } } }, D(GET => '/api/data?prefix=a') ],
    [ 'list limit=0',                          'INVALID_QUERY', D(GET => '/api/data?limit=0') ],
    [ 'list limit=1001',                       'INVALID_QUERY', D(GET => '/api/data?limit=1001') ],
    [ 'list limit=-1',                         'INVALID_QUERY', D(GET => '/api/data?limit=-1') ],
    [ 'list limit=1e3',                        'INVALID_QUERY', D(GET => '/api/data?limit=1e3') ],
    [ 'list limit=1; DROP TABLE data',         'INVALID_QUERY', D(GET => '/api/data?limit=1%3B%20DROP%20TABLE%20data') ],
    [ 'list prefix twice',                     'INVALID_QUERY', D(GET => '/api/data?prefix=a&prefix=%25') ],
    [ 'list prefix=%zz',                       'INVALID_QUERY', D(GET => '/api/data?prefix=%zz') ],
    [ 'list prefix=%00',                       'INVALID_QUERY', D(GET => '/api/data?prefix=%00') ],
    [ "list cursor=' OR 1=1 --",               'INVALID_QUERY', D(GET => '/api/data?cursor=%27%20OR%201%3D1%20--') ],

    # --- percent-encoding edge cases in URL keys
    [ 'URL key %',                             'INVALID_KEY', D(GET => '/api/data/%') ],
    [ 'URL key %zz',                           'INVALID_KEY', D(GET => '/api/data/%zz') ],
    [ 'URL key %4',                            'INVALID_KEY', D(GET => '/api/data/%4') ],
    [ 'URL key a%4',                           'INVALID_KEY', D(GET => '/api/data/a%4') ],
    [ 'URL key %00',                           'INVALID_KEY', D(GET => '/api/data/%00') ],
    [ 'URL key a%00b',                         'INVALID_KEY', D(GET => '/api/data/a%00b') ],
    [ 'DELETE a%00 (must not delete a)',       'INVALID_KEY', D(DELETE => '/api/data/a%00') ],
    [ 'PUT a%00 (must not update a)',          'INVALID_KEY', D(PUT => '/api/data/a%00', '{"value":"pwned"}') ],
    [ 'URL key %FF',                           'INVALID_KEY', D(GET => '/api/data/%FF') ],
    [ 'URL key raw 0xFF byte',                 'INVALID_KEY', RAW("GET /api/data/\xFF HTTP/1.1", $AUTH_A) ],
    [ 'URL key %C0%AF (overlong /)',           'INVALID_KEY', D(GET => '/api/data/a%C0%AF') ],
    [ 'URL key %ED%A0%80 (surrogate)',         'INVALID_KEY', D(GET => '/api/data/%ED%A0%80') ],
    [ 'URL key %2F (a slash)',                 'KEY_NOT_FOUND', D(GET => '/api/data/%2F') ],
    [ 'URL key %252F (key %2F)',               'KEY_NOT_FOUND', D(GET => '/api/data/%252F') ],
    [ 'URL key of 256 bytes',                  'INVALID_KEY', D(GET => '/api/data/' . 'k' x 256) ],
    [ 'URL key of 256 bytes, escaped',         'INVALID_KEY', D(GET => kpath('é' x 128)) ],
    [ 'URL path of 10 KB',                     'INVALID_KEY', D(GET => '/api/data/' . 'k' x 10240) ],
    [ 'URL path of 20 KB (over nginx buffers)', 'BAD_REQUEST', D(GET => '/api/data/' . 'k' x 20480) ],
    [ 'URL key .. (absent)',                   'KEY_NOT_FOUND', RAW('GET /api/data/.. HTTP/1.1', $AUTH_A) ],
    [ 'URL key %2E%2E%2Fx (absent)',           'KEY_NOT_FOUND', D(GET => '/api/data/%2E%2E%2Fx') ],

    # --- unknown methods and paths
    [ 'TRACE /api/data/a (nginx)',             'METHOD_NOT_ALLOWED', RAW('TRACE /api/data/a HTTP/1.1', $AUTH_A), allow => $ALLOW_NGINX ],
    [ 'TRACE /api/register (nginx)',           'METHOD_NOT_ALLOWED', RAW('TRACE /api/register HTTP/1.1'), allow => $ALLOW_NGINX ],
    [ 'CONNECT /api/data/a (nginx)',           'METHOD_NOT_ALLOWED', RAW('CONNECT /api/data/a HTTP/1.1', $AUTH_A), allow => $ALLOW_NGINX ],
    [ 'CONNECT authority-form',                'BAD_REQUEST', RAW('CONNECT evil.example:443 HTTP/1.1') ],
    [ 'POST /api/data/a',                      'METHOD_NOT_ALLOWED', D(POST => '/api/data/a', '{"value":"pwned"}'), allow => $ALLOW_KEY ],
    [ 'PATCH /api/register',                   'METHOD_NOT_ALLOWED', { %{ REG() }, m => 'PATCH' }, allow => $ALLOW_REGISTER ],
    [ 'PROPFIND /api/data/a',                  'METHOD_NOT_ALLOWED', D(PROPFIND => '/api/data/a'), allow => $ALLOW_KEY ],
    [ 'FOO /api/token',                        'METHOD_NOT_ALLOWED', N(FOO => '/api/token', '{}'), allow => $ALLOW_TOKEN ],
    [ 'DELETE /api/data (the collection)',     'METHOD_NOT_ALLOWED', D(DELETE => '/api/data'), allow => $ALLOW_DATA ],
    [ 'POST /api/health',                      'METHOD_NOT_ALLOWED', N(POST => '/api/health', '{}'), allow => $ALLOW_HEALTH ],
    [ 'lower-case method "get"',               'BAD_REQUEST', RAW('get /api/health HTTP/1.1') ],
    [ 'GET /api/',                             'NOT_FOUND', D(GET => '/api/') ],
    [ 'GET /api/datax',                        'NOT_FOUND', D(GET => '/api/datax') ],
    [ 'GET /API/data/a',                       'NOT_FOUND', D(GET => '/API/data/a') ],
    [ 'GET /etc/passwd',                       'NOT_FOUND', D(GET => '/etc/passwd') ],
    [ 'GET /api/../etc/passwd',                'NOT_FOUND', RAW('GET /api/../etc/passwd HTTP/1.1', $AUTH_A) ],
    [ 'GET /api/%2e%2e/etc/passwd',            'NOT_FOUND', RAW('GET /api/%2e%2e/etc/passwd HTTP/1.1', $AUTH_A) ],
    [ 'GET /api/data/../../etc/passwd (a key)', 'KEY_NOT_FOUND', RAW('GET /api/data/../../etc/passwd HTTP/1.1', $AUTH_A) ],
    [ 'GET /api/data/../../../etc/passwd (above root)', 'BAD_REQUEST', RAW('GET /api/data/../../../etc/passwd HTTP/1.1', $AUTH_A) ],

    # --- passwords over 72 bytes; never truncated
    [ 'register: password of 73 ASCII bytes',  'INVALID_PASSWORD', REG(password => 'p' x 73) ],
    [ 'register: password of 37 × é (74 bytes)', 'INVALID_PASSWORD', REG(password => 'é' x 37) ],
    [ 'register: 71 bytes + é (73 bytes)',     'INVALID_PASSWORD', REG(password => 'p' x 71 . 'é') ],
    [ 'login: 72-byte password . "x"',         'INVALID_CREDENTIALS', LOGIN($U72, "${P72}x") ],
    [ 'login: 72-byte password . "é"',         'INVALID_CREDENTIALS', LOGIN($U72, "${P72}é") ],
    [ 'login: 72-byte password minus 1',       'INVALID_CREDENTIALS', LOGIN($U72, substr($P72, 0, 71)) ],
    [ 'login: password . \u0000 . junk',       'INVALID_CREDENTIALS', LOGIN($U72, "$P72\0junk") ],
    [ 'login: username . \u0000 . junk',       'INVALID_CREDENTIALS', LOGIN("$U72\0junk", $P72) ],

    # --- PATCH /api/data/{key} (issue 15): a merge patch that is no valid value, wrong
    # Content-Types, bodies too large, preconditions, other keys; every one changes nothing
    [ 'PATCH: text/plain',                     'UNSUPPORTED_MEDIA_TYPE', PATCHA('{"x":1}', 'text/plain') ],
    [ 'PATCH: no Content-Type',                'UNSUPPORTED_MEDIA_TYPE', CT(undef, PATCH => '/api/data/a', '{"x":1}', 1) ],
    [ 'PATCH: x-www-form-urlencoded',          'UNSUPPORTED_MEDIA_TYPE', PATCHA('x=1', 'application/x-www-form-urlencoded') ],
    [ 'PATCH: application/json-patch+json',    'UNSUPPORTED_MEDIA_TYPE', PATCHA('[{"op":"replace","path":"","value":"pwned"}]', 'application/json-patch+json') ],
    [ 'PATCH: merge-patch+json; charset=latin1', 'UNSUPPORTED_MEDIA_TYPE', PATCHA('{"x":1}', "$MPJ; charset=latin1") ],
    [ 'PATCH: multipart/form-data',            'UNSUPPORTED_MEDIA_TYPE', PATCHA(qq(--zz\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--zz--\r\n), 'multipart/form-data; boundary=zz') ],
    [ 'PATCH: empty body',                     'INVALID_JSON', PATCHA('') ],
    [ 'PATCH: truncated object',               'INVALID_JSON', PATCHA('{"x":') ],
    [ 'PATCH: truncated inside \u escape',     'INVALID_JSON', PATCHA('"\u00') ],
    [ 'PATCH: object then garbage',            'INVALID_JSON', PATCHA('{"x":1}]') ],
    [ 'PATCH: two values',                     'INVALID_JSON', PATCHA('"a" "b"') ],
    [ 'PATCH: raw NUL in a string',            'INVALID_JSON', PATCHA(qq({"x":"a\x00b"})) ],
    [ 'PATCH: raw NUL between members',        'INVALID_JSON', PATCHA(qq({"x":1,\x00"y":2})) ],
    [ 'PATCH: 0xFF in a member name',          'INVALID_JSON', PATCHA(qq({"x\xFF":1})) ],
    [ 'PATCH: overlong / (C0 AF)',             'INVALID_JSON', PATCHA(qq("\xC0\xAF")) ],
    [ 'PATCH: UTF-8 surrogate (ED A0 80)',     'INVALID_JSON', PATCHA(qq({"x":"\xED\xA0\x80"})) ],
    [ 'PATCH: top-level null',                 'INVALID_VALUE', PATCHA('null') ],
    [ 'PATCH: top-level null, application/json', 'INVALID_VALUE', PATCHA('null', $BJ) ],
    [ 'PATCH: null in whitespace',             'INVALID_VALUE', PATCHA(" \r\n null \t") ],
    [ 'PATCH: \u0000 in a string',             'INVALID_VALUE', PATCHA('"pwned\u0000"') ],
    [ 'PATCH: \u0000 in a member',             'INVALID_VALUE', PATCHA('{"x":"a\u0000b"}') ],
    [ 'PATCH: \u0000 in a member name',        'INVALID_VALUE', PATCHA('{"x\u0000":1}') ],
    [ 'PATCH: \u0000 deep inside',             'INVALID_VALUE', PATCHA('{"x":[{"y":["\u0000"]}]}') ],
    [ 'PATCH: 1e400',                          'INVALID_VALUE', PATCHA('{"x":1e400}') ],
    [ 'PATCH: duplicate member',               'INVALID_JSON', PATCHA('{"x":1,"x":2}') ],
    [ 'PATCH: duplicate null and value',       'INVALID_JSON', PATCHA('{"x":null,"x":"pwned"}') ],
    [ 'PATCH: duplicate spelled with escapes', 'INVALID_JSON', PATCHA('{"x":1,"\u0078":2}') ],
    [ 'PATCH: duplicate nested',               'INVALID_JSON', PATCHA('{"x":{"y":1,"y":null}}') ],
    [ 'PATCH: duplicate inside an array',      'INVALID_JSON', PATCHA('[{"x":1,"z":0,"x":1}]') ],
    [ 'PATCH: 257 nested objects',             'INVALID_JSON', PATCHA('{"a":' x 256 . '1' . '}' x 256) ],
    [ 'PATCH: 10000 nested arrays',            'INVALID_JSON', PATCHA($DEEP_A) ],
    [ 'PATCH: 10000 nested objects',           'INVALID_JSON', PATCHA($DEEP_O) ],
    [ 'PATCH: 10000 unclosed objects',         'INVALID_JSON', PATCHA('{"a":' x 10000) ],
    [ 'PATCH: a string of value_max + 1 bytes', 'INVALID_VALUE', PATCHA('"' . 'x' x 1048575 . '"') ],
    [ 'PATCH: a member of 1 MiB',              'INVALID_VALUE', PATCHA('{"big":"' . 'x' x 1048576 . '"}') ],
    [ 'PATCH: a real body of body_max+1 bytes', 'PAYLOAD_TOO_LARGE', PATCHA('"' . 'x' x ($BIG - 1) . '"') ],
    [ 'PATCH: Content-Length 99999999999',     'PAYLOAD_TOO_LARGE',
      RAW('PATCH /api/data/a HTTP/1.1', "${AUTH_A}Content-Type: $MPJ\r\nContent-Length: 99999999999\r\n", '{"x":') ],
    [ 'PATCH: chunked, no Content-Length, 1.2 MB', 'PAYLOAD_TOO_LARGE',
      RAW('PATCH /api/data/a HTTP/1.1', "${AUTH_A}Content-Type: $MPJ\r\nTransfer-Encoding: chunked\r\n", $CHUNKED_BIG) ],
    [ 'PATCH: If-Match never issued',          'PRECONDITION_FAILED', PATCHA('{"x":1}', undef, 'If-Match' => '"0000000000000000"') ],
    [ 'PATCH: If-Match of garbage',            'PRECONDITION_FAILED', PATCHA('{"x":1}', undef, 'If-Match' => "' OR '1'='1") ],
    [ 'PATCH: no token',                       'INVALID_TOKEN', { %{ PATCHA('{"x":1}') }, h => hdrs(undef, $MPJ) }, www => $WWW_NONE ],
    [ 'PATCH: no token, text/plain, null',     'INVALID_TOKEN', { %{ PATCHA('null') }, h => hdrs(undef, 'text/plain') }, www => $WWW_NONE ],
    [ 'PATCH: revoked token',                  'INVALID_TOKEN', { %{ PATCHA('{"x":1}') }, h => hdrs($TR, $MPJ) } ],
    [ "PATCH: the victim's key profile",       'KEY_NOT_FOUND', D(PATCH => '/api/data/profile', '{"name":"pwned"}') ],
    [ 'PATCH: key % (only "a" exists)',        'KEY_NOT_FOUND', D(PATCH => '/api/data/%25', '{"x":1}') ],
    [ 'PATCH: key _',                          'KEY_NOT_FOUND', D(PATCH => '/api/data/_', '{"x":1}') ],
    [ 'PATCH: key A (no case folding)',        'KEY_NOT_FOUND', D(PATCH => '/api/data/A', '{"x":1}') ],
    [ 'PATCH: key "a " (no PAD SPACE match)',  'KEY_NOT_FOUND', D(PATCH => '/api/data/a%20', '{"x":1}') ],
    [ 'PATCH: a%00 (must not patch a)',        'INVALID_KEY', D(PATCH => '/api/data/a%00', '{"x":1}') ],
    [ 'PATCH: URL key %zz',                    'INVALID_KEY', D(PATCH => '/api/data/%zz', '{"x":1}') ],
    [ 'PATCH /api/data (the collection)',      'METHOD_NOT_ALLOWED', D(PATCH => '/api/data', '{"x":1}'), allow => $ALLOW_DATA ],

    # --- ttl (issue 15): every wrong type and range, on POST and PUT
    [ 'POST: ttl "10"',                        'INVALID_TTL', POSTD('{"key":"h40","value":1,"ttl":"10"}') ],
    [ 'POST: ttl true',                        'INVALID_TTL', POSTD('{"key":"h41","value":1,"ttl":true}') ],
    [ 'POST: ttl false',                       'INVALID_TTL', POSTD('{"key":"h42","value":1,"ttl":false}') ],
    [ 'POST: ttl []',                          'INVALID_TTL', POSTD('{"key":"h43","value":1,"ttl":[]}') ],
    [ 'POST: ttl {}',                          'INVALID_TTL', POSTD('{"key":"h44","value":1,"ttl":{}}') ],
    [ 'POST: ttl [10]',                        'INVALID_TTL', POSTD('{"key":"h45","value":1,"ttl":[10]}') ],
    [ 'POST: ttl 0',                           'INVALID_TTL', POSTD('{"key":"h46","value":1,"ttl":0}') ],
    [ 'POST: ttl -1',                          'INVALID_TTL', POSTD('{"key":"h47","value":1,"ttl":-1}') ],
    [ 'POST: ttl 1.5',                         'INVALID_TTL', POSTD('{"key":"h48","value":1,"ttl":1.5}') ],
    [ 'POST: ttl 31536001',                    'INVALID_TTL', POSTD('{"key":"h49","value":1,"ttl":31536001}') ],
    [ 'POST: ttl 2^64',                        'INVALID_TTL', POSTD('{"key":"h50","value":1,"ttl":18446744073709551616}') ],
    [ 'POST: ttl -2^63',                       'INVALID_TTL', POSTD('{"key":"h51","value":1,"ttl":-9223372036854775808}') ],
    [ 'POST: ttl "1; DROP TABLE data"',        'INVALID_TTL', POSTD('{"key":"h52","value":1,"ttl":"1; DROP TABLE data"}') ],
    [ 'POST: ttl "\u0000"',                    'INVALID_TTL', POSTD('{"key":"h53","value":1,"ttl":"\u0000"}') ],
    [ 'POST: ttl twice',                       'INVALID_JSON', POSTD('{"key":"h54","value":1,"ttl":5,"ttl":"x"}') ],
    [ 'POST: bad key and bad ttl',             'INVALID_KEY', POSTD('{"key":"","value":1,"ttl":"x"}') ],
    [ 'POST: bad value and bad ttl',           'INVALID_VALUE', POSTD('{"key":"h55","value":null,"ttl":0}') ],
    [ 'PUT: ttl "10"',                         'INVALID_TTL', PUTA('{"value":"pwned","ttl":"10"}') ],
    [ 'PUT: ttl true',                         'INVALID_TTL', PUTA('{"value":"pwned","ttl":true}') ],
    [ 'PUT: ttl {}',                           'INVALID_TTL', PUTA('{"value":"pwned","ttl":{}}') ],
    [ 'PUT: ttl []',                           'INVALID_TTL', PUTA('{"value":"pwned","ttl":[]}') ],
    [ 'PUT: ttl 0',                            'INVALID_TTL', PUTA('{"value":"pwned","ttl":0}') ],
    [ 'PUT: ttl -1',                           'INVALID_TTL', PUTA('{"value":"pwned","ttl":-1}') ],
    [ 'PUT: ttl 1.5',                          'INVALID_TTL', PUTA('{"value":"pwned","ttl":1.5}') ],
    [ 'PUT: ttl 31536001',                     'INVALID_TTL', PUTA('{"value":"pwned","ttl":31536001}') ],
    [ 'PUT: ttl 1e400',                        'INVALID_TTL', PUTA('{"value":"pwned","ttl":1e400}') ],
    [ 'PUT: bad value and bad ttl',            'INVALID_VALUE', PUTA('{"value":null,"ttl":"x"}') ],

    # --- PATCH /api/users/me (issue 14): wrong types, NUL, huge strings, duplicates
    [ 'PATCH me: email a number',              'INVALID_PROFILE', PATCHME('{"email":5}') ],
    [ 'PATCH me: email true',                  'INVALID_PROFILE', PATCHME('{"email":true}') ],
    [ 'PATCH me: email null',                  'INVALID_PROFILE', PATCHME('{"email":null}') ],
    [ 'PATCH me: email an array',              'INVALID_PROFILE', PATCHME('{"email":["a70@example.com"]}') ],
    [ 'PATCH me: email an object',             'INVALID_PROFILE', PATCHME('{"email":{"e":"a70@example.com"}}') ],
    [ 'PATCH me: full_name a number',          'INVALID_PROFILE', PATCHME('{"full_name":1}') ],
    [ 'PATCH me: full_name false',             'INVALID_PROFILE', PATCHME('{"full_name":false}') ],
    [ 'PATCH me: age a string',                'INVALID_AGE', PATCHME('{"age":"30"}') ],
    [ 'PATCH me: age true',                    'INVALID_AGE', PATCHME('{"age":true}') ],
    [ 'PATCH me: age an object',               'INVALID_AGE', PATCHME('{"age":{"v":30}}') ],
    [ 'PATCH me: age 1e400',                   'INVALID_AGE', PATCHME('{"age":1e400}') ],
    [ 'PATCH me: gender a number',             'INVALID_GENDER', PATCHME('{"gender":5}') ],
    [ 'PATCH me: gender an array',             'INVALID_GENDER', PATCHME('{"gender":["f"]}') ],
    [ 'PATCH me: username',                    'INVALID_PROFILE', PATCHME(enc({ username => $V->{username} })) ],
    [ 'PATCH me: username null',               'INVALID_PROFILE', PATCHME('{"username":null}') ],
    [ 'PATCH me: password a number',           'INVALID_PROFILE', PATCHME('{"password":12345678}') ],
    [ 'PATCH me: password beside a valid field', 'INVALID_PROFILE', PATCHME('{"full_name":"Pwned","password":"correct horse 9"}') ],
    [ 'PATCH me: \u0000 in email',             'INVALID_PROFILE', PATCHME('{"email":"a\u0000@example.com"}') ],
    [ 'PATCH me: email + \u0000 + junk',       'INVALID_PROFILE', PATCHME('{"email":"new70@example.com\u0000junk"}') ],
    [ 'PATCH me: \u0000 in full_name',         'INVALID_PROFILE', PATCHME('{"full_name":"Pwned\u0000"}') ],
    [ 'PATCH me: \u0000 in gender',            'INVALID_GENDER', PATCHME('{"gender":"f\u0000x"}') ],
    [ 'PATCH me: raw NUL in full_name',        'INVALID_JSON', PATCHME(qq({"full_name":"a\x00b"})) ],
    [ 'PATCH me: 0xFF in full_name',           'INVALID_JSON', PATCHME(qq({"full_name":"a\xFF"})) ],
    [ 'PATCH me: email of 1 MB',               'INVALID_PROFILE', PATCHME(enc({ email => 'e' x 1_000_000 . '@example.com' })) ],
    [ 'PATCH me: full_name of 1 MB',           'INVALID_PROFILE', PATCHME(enc({ full_name => 'f' x 1_000_000 })) ],
    [ 'PATCH me: gender of 1 MB',              'INVALID_GENDER', PATCHME(enc({ gender => 'g' x 1_000_000 })) ],
    [ 'PATCH me: duplicate full_name',         'INVALID_JSON', PATCHME('{"full_name":"a","full_name":"b"}') ],
    [ 'PATCH me: duplicate spelled with escapes', 'INVALID_JSON', PATCHME('{"email":"x70@example.com","em\u0061il":"y70@example.com"}') ],
    [ 'PATCH me: duplicate username',          'INVALID_JSON', PATCHME('{"username":"a","username":"b"}') ],
    [ 'PATCH me: top-level array',             'INVALID_JSON', PATCHME('[{"full_name":"x"}]') ],
    [ 'PATCH me: 10000 nested arrays',         'INVALID_JSON', PATCHME(qq({"full_name":"x","x":$DEEP_A})) ],
    [ "PATCH me: email \"' OR '1'='1\"",       'INVALID_PROFILE', PATCHME(enc({ email => "' OR '1'='1" })) ],
    [ "PATCH me: the victim's email in upper case", 'EMAIL_EXISTS', PATCHME(enc({ email => uc $V->{email} })) ],
    [ 'PATCH me: no token',                    'INVALID_TOKEN', { m => 'PATCH', p => '/api/users/me', h => hdrs(undef, $BJ),
        body => '{"full_name":"x"}' }, www => $WWW_NONE ],
    [ 'PATCH me: revoked token',               'INVALID_TOKEN', PATCHME('{"full_name":"x"}', $TR) ],
    [ 'PATCH me: text/plain',                  'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', PATCH => '/api/users/me', '{"full_name":"x"}', 1) ],

    # --- PUT /api/users/me/password
    [ 'PUT password: current_password a number', 'MISSING_PASSWORDS', CHPW('{"current_password":12345678,"new_password":"correct horse 9"}') ],
    [ 'PUT password: current_password true',   'MISSING_PASSWORDS', CHPW('{"current_password":true,"new_password":"correct horse 9"}') ],
    [ 'PUT password: new_password an array',   'MISSING_PASSWORDS', CHPW(enc({ current_password => $A->{password}, new_password => ['correct horse 9'] })) ],
    [ 'PUT password: new_password an object',  'MISSING_PASSWORDS', CHPW(enc({ current_password => $A->{password}, new_password => { p => 1 } })) ],
    [ 'PUT password: both null',               'MISSING_PASSWORDS', CHPW('{"current_password":null,"new_password":null}') ],
    [ 'PUT password: \u0000 in new_password',  'INVALID_PASSWORD', CHPW(qq({"current_password":"$A->{password}","new_password":"correct\\u0000horse 9"})) ],
    [ 'PUT password: current_password + \u0000', 'INVALID_CREDENTIALS', CHPW(qq({"current_password":"$A->{password}\\u0000","new_password":"correct horse 9"})) ],
    [ 'PUT password: current_password + \u0000 + junk', 'INVALID_CREDENTIALS',
      CHPW(qq({"current_password":"$A->{password}\\u0000junk","new_password":"correct horse 9"})) ],
    [ 'PUT password: 72-byte current_password . "x"', 'INVALID_CREDENTIALS', CHPW(enc({ current_password => "${P72}x", new_password => 'correct horse 9' }), $T72) ],
    [ 'PUT password: new_password of 73 bytes', 'INVALID_PASSWORD', CHPW(enc({ current_password => $A->{password}, new_password => 'p' x 73 })) ],
    [ 'PUT password: new_password of 1 MB',    'INVALID_PASSWORD', CHPW(enc({ current_password => $A->{password}, new_password => 'p' x 1_000_000 })) ],
    [ 'PUT password: current_password of 1 MB', 'INVALID_CREDENTIALS', CHPW(enc({ current_password => 'p' x 1_000_000, new_password => 'correct horse 9' })) ],
    [ 'PUT password: the right one + 1 MB',    'INVALID_CREDENTIALS', CHPW(enc({ current_password => $A->{password} . 'p' x 1_000_000, new_password => 'correct horse 9' })) ],
    [ "PUT password: current_password \"' OR '1'='1\"", 'INVALID_CREDENTIALS', CHPW(enc({ current_password => "' OR '1'='1", new_password => 'correct horse 9' })) ],
    [ 'PUT password: duplicate current_password (wrong, then right)', 'INVALID_JSON',
      CHPW(qq({"current_password":"wrong","current_password":"$A->{password}","new_password":"correct horse 9"})) ],
    [ 'PUT password: duplicate new_password',  'INVALID_JSON', CHPW(qq({"current_password":"$A->{password}","new_password":"correct horse 9","new_password":"x"})) ],
    [ 'PUT password: top-level array',         'INVALID_JSON', CHPW('[]') ],
    [ 'PUT password: raw NUL',                 'INVALID_JSON', CHPW(qq({"current_password":"$A->{password}\x00","new_password":"correct horse 9"})) ],
    [ 'PUT password: no token',                'INVALID_TOKEN', { m => 'PUT', p => '/api/users/me/password', h => hdrs(undef, $BJ),
        body => '{}' }, www => $WWW_NONE ],
    [ 'PUT password: no Content-Type',         'UNSUPPORTED_MEDIA_TYPE', CT(undef, PUT => '/api/users/me/password',
        enc({ current_password => $A->{password}, new_password => 'correct horse 9' }), 1) ],

    # --- DELETE /api/users/me
    [ 'DELETE me: password a number',          'INVALID_CREDENTIALS', DELME('{"password":12345678}') ],
    [ 'DELETE me: password null',              'INVALID_CREDENTIALS', DELME('{"password":null}') ],
    [ 'DELETE me: password true',              'INVALID_CREDENTIALS', DELME('{"password":true}') ],
    [ 'DELETE me: password an array',          'INVALID_CREDENTIALS', DELME(enc({ password => [ $A->{password} ] })) ],
    [ 'DELETE me: password an object',         'INVALID_CREDENTIALS', DELME(enc({ password => { p => $A->{password} } })) ],
    [ 'DELETE me: password + \u0000',          'INVALID_CREDENTIALS', DELME(qq({"password":"$A->{password}\\u0000"})) ],
    [ 'DELETE me: password + \u0000 + junk',   'INVALID_CREDENTIALS', DELME(qq({"password":"$A->{password}\\u0000junk"})) ],
    [ 'DELETE me: 72-byte password . "x"',     'INVALID_CREDENTIALS', DELME(enc({ password => "${P72}x" }), $T72) ],
    [ 'DELETE me: 72-byte password . "é"',     'INVALID_CREDENTIALS', DELME(enc({ password => "${P72}é" }), $T72) ],
    [ 'DELETE me: password of 1 MB',           'INVALID_CREDENTIALS', DELME(enc({ password => 'p' x 1_000_000 })) ],
    [ 'DELETE me: the right one + 1 MB',       'INVALID_CREDENTIALS', DELME(enc({ password => $A->{password} . 'p' x 1_000_000 })) ],
    [ "DELETE me: password \"' OR '1'='1\"",   'INVALID_CREDENTIALS', DELME(enc({ password => "' OR '1'='1" })) ],
    [ 'DELETE me: duplicate password (wrong, then right)', 'INVALID_JSON', DELME(qq({"password":"wrong","password":"$A->{password}"})) ],
    [ 'DELETE me: duplicate spelled with escapes', 'INVALID_JSON', DELME(qq({"password":"wrong","p\\u0061ssword":"$A->{password}"})) ],
    [ 'DELETE me: top-level string',           'INVALID_JSON', DELME(qq("$A->{password}")) ],
    [ 'DELETE me: 10000 nested objects',       'INVALID_JSON', DELME(qq({"password":"x","x":$DEEP_O})) ],
    [ 'DELETE me: raw NUL after the password', 'INVALID_JSON', DELME(qq({"password":"$A->{password}\x00"})) ],
    [ 'DELETE me: no token',                   'INVALID_TOKEN', { m => 'DELETE', p => '/api/users/me', h => hdrs(undef, $BJ),
        body => enc({ password => $A->{password} }) }, www => $WWW_NONE ],
    [ 'DELETE me: revoked token, right password', 'INVALID_TOKEN', DELME(enc({ password => $A->{password} }), $TR) ],
    [ 'DELETE me: text/plain, right password', 'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', DELETE => '/api/users/me',
        enc({ password => $A->{password} }), 1) ],
    [ 'DELETE me: form-encoded, right password', 'UNSUPPORTED_MEDIA_TYPE', CT('application/x-www-form-urlencoded',
        DELETE => '/api/users/me', "password=$A->{password}", 1) ],

    # --- the refresh grant
    [ 'refresh: refresh_token 5',              'INVALID_GRANT', GRANTRAW('{"grant_type":"refresh_token","refresh_token":5}') ],
    [ 'refresh: refresh_token true',           'INVALID_GRANT', GRANTRAW('{"grant_type":"refresh_token","refresh_token":true}') ],
    [ 'refresh: refresh_token null',           'INVALID_GRANT', GRANTRAW('{"grant_type":"refresh_token","refresh_token":null}') ],
    [ 'refresh: refresh_token ""',             'INVALID_GRANT', GRANT('') ],
    [ "refresh: refresh_token [A's]",          'INVALID_GRANT', GRANT([$RA]) ],
    [ "refresh: refresh_token {A's}",          'INVALID_GRANT', GRANT({ t => $RA }) ],
    [ "refresh: none, A's username and password", 'INVALID_GRANT', TOK(grant_type => 'refresh_token') ],
    [ "refresh: A's + \\u0000",                'INVALID_GRANT', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"$RA\\u0000"})) ],
    [ "refresh: A's + \\u0000 + junk",         'INVALID_GRANT', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"$RA\\u0000junk"})) ],
    [ "refresh: \\u0000 + A's",                'INVALID_GRANT', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"\\u0000$RA"})) ],
    [ "refresh: raw NUL after A's",            'INVALID_JSON', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"$RA\x00"})) ],
    [ 'refresh: 0xFF in the token',            'INVALID_JSON', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"\xFF"})) ],
    [ 'refresh: a token of 1 MB',              'INVALID_GRANT', GRANT('A' x 1_000_000) ],
    [ "refresh: A's + 1 MB",                   'INVALID_GRANT', GRANT($RA . 'A' x 1_000_000) ],
    [ "refresh: \"' OR '1'='1\"",              'INVALID_GRANT', GRANT("' OR '1'='1") ],
    [ 'refresh: 43 underscores (LIKE _)',      'INVALID_GRANT', GRANT('_' x 43) ],
    [ 'refresh: 43 percent signs',             'INVALID_GRANT', GRANT('%' x 43) ],
    [ "refresh: A's access token",             'INVALID_GRANT', GRANT($TA) ],
    [ "refresh: A's revoked access token",     'INVALID_GRANT', GRANT($TR) ],
    [ "refresh: duplicate refresh_token (bad, then A's)", 'INVALID_JSON',
      GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"x","refresh_token":"$RA"})) ],
    [ 'refresh: duplicate grant_type',         'INVALID_JSON', GRANTRAW(qq({"grant_type":"password","grant_type":"refresh_token","refresh_token":"$RA"})) ],
    [ 'refresh: top-level array',              'INVALID_JSON', GRANTRAW(qq([{"grant_type":"refresh_token","refresh_token":"$RA"}])) ],
    [ 'refresh: 10000 nested arrays',          'INVALID_JSON', GRANTRAW(qq({"grant_type":"refresh_token","refresh_token":"$RA","x":$DEEP_A})) ],
    [ 'refresh: text/plain',                   'UNSUPPORTED_MEDIA_TYPE', CT('text/plain', POST => '/api/token',
        qq({"grant_type":"refresh_token","refresh_token":"$RA"})) ],

    # --- unknown grant types, with A's valid credentials
    [ 'grant_type "implicit"',                 'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'implicit') ],
    [ 'grant_type "client_credentials"',       'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'client_credentials') ],
    [ 'grant_type "authorization_code"',       'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'authorization_code') ],
    [ 'grant_type a URN',                      'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'urn:ietf:params:oauth:grant-type:jwt-bearer') ],
    [ 'grant_type "PASSWORD"',                 'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'PASSWORD') ],
    [ 'grant_type " password"',                'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => ' password') ],
    [ 'grant_type ""',                         'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => '') ],
    [ 'grant_type "password\u0000"',           'UNSUPPORTED_GRANT_TYPE', N(POST => '/api/token',
        qq({"grant_type":"password\\u0000","username":"$A->{username}","password":"$A->{password}"})) ],
    [ 'grant_type "refresh_token\u0000x"',     'UNSUPPORTED_GRANT_TYPE', GRANTRAW(qq({"grant_type":"refresh_token\\u0000x","refresh_token":"$RA"})) ],
    [ "grant_type \"' OR '1'='1\"",            'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => "' OR '1'='1") ],
    [ 'grant_type of 1 MB',                    'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'g' x 1_000_000) ],
    [ 'grant_type "password" + 1 MB',          'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 'password' . 'd' x 1_000_000) ],
    [ 'grant_type 0',                          'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 0) ],
    [ 'grant_type -1',                         'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => -1) ],
    [ 'grant_type 1.5',                        'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => 1.5) ],
    [ 'grant_type true',                       'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => JSON::PP::true) ],
    [ 'grant_type false',                      'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => JSON::PP::false) ],
    [ 'grant_type {}',                         'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => {}) ],
    [ 'grant_type []',                         'UNSUPPORTED_GRANT_TYPE', TOK(grant_type => []) ],
    [ 'grant_type ["refresh_token"]',          'UNSUPPORTED_GRANT_TYPE', GRANTRAW(qq({"grant_type":["refresh_token"],"refresh_token":"$RA"})) ],
    [ "grant_type {\"refresh_token\":A's}",    'UNSUPPORTED_GRANT_TYPE', GRANTRAW(qq({"grant_type":{"refresh_token":"$RA"}})) ],
    [ 'grant_type null: the password grant',   'MISSING_FIELDS', N(POST => '/api/token', '{"grant_type":null,"password":"x"}') ],

    # --- request smuggling and malformed framing (raw sockets)
    [ 'smuggle: Content-Length + Transfer-Encoding', 'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n",
          "0\r\n\r\n" . SMUGGLED(SMUG())) ],
    [ 'smuggle: Transfer-Encoding + Content-Length', 'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n",
          "0\r\n\r\n" . SMUGGLED(SMUG())) ],
    [ 'smuggle: two different Content-Lengths', 'BAD_REQUEST',
      do { my $sm = SMUGGLED(SMUG()); RAWK('GET /api/data/a HTTP/1.1', "${AUTH_A}Content-Length: 0\r\nContent-Length: " . length($sm) . "\r\n", $sm) } ],
    [ 'smuggle: two equal Content-Lengths',    'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n", '{}') ],
    [ 'smuggle: Transfer-Encoding twice',      'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" . SMUGGLED(SMUG())) ],
    [ 'smuggle: Transfer-Encoding: gzip, chunked', 'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n") ],
    [ 'smuggle: Transfer-Encoding: identity',  'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: identity\r\n", SMUGGLED(SMUG())) ],
    [ 'smuggle: "Transfer-Encoding : chunked"', 'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding : chunked\r\n", "0\r\n\r\n" . SMUGGLED(SMUG())) ],
    [ 'smuggle: chunked with HTTP/1.0',        'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.0', "${AUTH_A}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" . SMUGGLED(SMUG())) ],
    [ 'smuggle: obs-fold header line',         'BAD_REQUEST',
      RAWK('POST /api/data HTTP/1.1', "${AUTH_A}Content-Type: application/json\r\nX-Fold: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", '{}') ],
    [ 'smuggle: a request in a GET body',      [ $A_a, 'BAD_REQUEST' ],
      do { my $sm = SMUGGLED(SMUG()); RAWK('GET /api/data/a HTTP/1.1', "${AUTH_A}Content-Length: " . length($sm) . "\r\n", $sm) } ],
    [ 'smuggle: bare LF line ends, body holds a request', [ $A_a, 'BAD_REQUEST' ],
      do { my $sm = SMUGGLED(SMUG()); "GET /api/data/a HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer $TA\nContent-Length: " . length($sm) . "\n\n$sm" } ],
    [ 'absolute-form request line',            [ $A_a, 'BAD_REQUEST' ], RAWK('GET http://evil.example/api/data/a HTTP/1.1', $AUTH_A) ],
    [ 'absolute-form to /etc/passwd',          'NOT_FOUND', RAW('GET http://evil.example/etc/passwd HTTP/1.1', $AUTH_A) ],
    [ 'no Host header (HTTP/1.1)',             'BAD_REQUEST', "GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n" ],
    [ 'two Host headers',                      'BAD_REQUEST', RAW('GET /api/health HTTP/1.1', "Host: evil.example\r\n") ],
    [ 'a 20 KB header line',                   'BAD_REQUEST', RAW('GET /api/data/a HTTP/1.1', "${AUTH_A}X-Big: " . 'y' x 20480 . "\r\n") ],
    [ 'garbage request line',                  'BAD_REQUEST', "GARBAGE\r\n\r\n" ],
    [ 'HTTP/9.9',                              'BAD_REQUEST', RAW('GET /api/health HTTP/9.9') ],
    [ 'GET * (asterisk-form)',                 'BAD_REQUEST', RAW('GET * HTTP/1.1') ],
    [ 'a TLS ClientHello',                     'BAD_REQUEST', "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" . "\x00" x 40 . "\r\n\r\n" ],
    [ 'an HTTP/2 preface',                     'BAD_REQUEST', "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" ],
);

my $n_main = run_catalogue(\%H, 40, @CATALOGUE);

healthy(\%H, "after all $n_main cases of the catalogue");
subtest 'no smuggled request was processed' => sub {
    for my $k (map { "smug$_" } 1 .. $SMUG_KEYS) {
        $s->error_is($s->request(GET => "/api/data/$k", { headers => $s->auth($TA) }), 'KEY_NOT_FOUND', "key $k absent");
    }
    is $s->sql("SELECT COUNT(*) FROM data WHERE k LIKE 'smug%' OR k LIKE 'h%'")->[0][0], 0,
        'no smug* or h* row in the table';
    is $s->sql("SELECT COUNT(*) FROM users WHERE username LIKE 'h70%'")->[0][0], 0,
        'no catalogue registration created a user';
};

subtest 'the account cases changed nothing' => sub {
    my $r = $s->request(POST => '/api/token', { json => { grant_type => 'refresh_token', refresh_token => $RA } });
    is $r->{status}, 200, "A's refresh token was not consumed: it rotates" or diag $r->{body};
    is $r->{json}{data}{session_id} // '', $SA // 'missing', 'of the same session';
    $r = $s->request(GET => '/api/data/a', { headers => $s->auth($T72 // 'x') });
    $s->error_is($r, 'KEY_NOT_FOUND', 'the 72-byte user\'s token still works (not deleted)');
    $r = $s->request(POST => '/api/token', { json => { username => $U72, password => $P72 } });
    is $r->{status}, 200, 'and logs in with the same password (not changed)' or diag $r->{body};
    $r = $s->request(POST => '/api/token', { json => { username => $A->{username}, password => $A->{password} } });
    is $r->{status}, 200, 'A logs in with the same password (not changed)' or diag $r->{body};
};

# ---------------------------------------------------------------------------
# The same metacharacters, stored by a user of their own, come back
# literally and never match each other.

subtest 'SQL metacharacters and LIKE wildcards are stored and read literally' => sub {
    my $M = $s->new_user('meta');
    my %auth = %{ $s->auth($M->{token}) };
    my @keys = ("' OR '1'='1", '%', '%a', '%2F', '_', '_b', '\\', '\\%', '"; DROP TABLE data; --',
                "Robert'); DROP TABLE users;--", 'a', 'ab', '/', '..', '../x', '../../etc/passwd');
    my %val = map { $_ => { literal => $_, sql => "'; DELETE FROM data; --", like => '%_\\' } } @keys;
    for my $k (@keys) {
        my $r = $s->request(POST => '/api/data', { headers => \%auth, json => { key => $k, value => $val{$k} } });
        subtest 'POST ' . show($k, 100) => sub {
            is $r->{status}, 201, 'status 201' or diag $r->{body};
            is $r->{headers}{location}, kpath($k), 'Location';
            is_deeply eval { $JSON->decode($r->{body}) }, { status => 'success', message => 'Data stored successfully.' },
                'whole body';
        };
    }
    for my $k (@keys) {
        my $r = $s->request(GET => kpath($k), { headers => \%auth });
        is_deeply eval { $JSON->decode($r->{body}) }, { status => 'success', data => { key => $k, value => $val{$k} } },
            'GET ' . kpath($k) . ': whole body' or diag "status $r->{status}: $r->{body}";
    }
    # Dot segments with raw slashes: the key comes from the raw URI.
    for my $k ('..', '../x', '../../etc/passwd') {
        my $r = $s->raw("GET /api/data/$k HTTP/1.1\r\n${HOST}Authorization: Bearer $M->{token}\r\nConnection: close\r\n\r\n");
        is_deeply $r->{json}, { status => 'success', data => { key => $k, value => $val{$k} } },
            "raw GET /api/data/$k: whole body" or diag "status " . ($r->{status} // 'none') . ": $r->{body}";
    }
    my $list = sub {
        my ($q, $name, @want) = @_;
        my $r = $s->request(GET => "/api/data?$q", { headers => \%auth });
        is_deeply eval { $JSON->decode($r->{body}) }, { status => 'success', data => {
            items => [ map { { key => $_, value => $val{$_} } } @want ], next_cursor => undef } },
            "list $name: " . (join(', ', map { show($_, 100) } @want) || 'nothing')
            or diag "status $r->{status}: $r->{body}";
    };
    $list->('prefix=%25', '%', '%', '%2F', '%a');
    $list->('prefix=%25%25', '%%');
    $list->('prefix=_', '_', '_', '_b');
    $list->('prefix=%5C', '\\', '\\', '\\%');
    $list->('prefix=%5C%25', '\\%', '\\%');
    $list->('prefix=%27', "'", "' OR '1'='1");
    $list->('prefix=.', '.', '..', '../../etc/passwd', '../x');
    $list->('prefix=a', 'a', 'a', 'ab');

    # Page through prefix=% one key at a time.
    my ($cursor, @seen) = (undef);
    for my $page (1 .. 4) {
        my $r = $s->request(GET => '/api/data?prefix=%25&limit=1' . (defined $cursor ? "&cursor=$cursor" : ''),
            { headers => \%auth });
        my $d = eval { $JSON->decode($r->{body})->{data} } or do { fail "page $page: $r->{body}"; last };
        push @seen, map { $_->{key} } @{ $d->{items} };
        $cursor = $d->{next_cursor};
        last unless defined $cursor;
    }
    is_deeply \@seen, [ '%', '%2F', '%a' ], 'pages of prefix=%, limit=1: each key once, literally';
    ok !defined $cursor, 'and the last page has next_cursor null';

    # 100 levels of nesting are fine.
    my $deep = 'bottom';
    $deep = [$deep] for 1 .. 100;
    my $r = $s->request(POST => '/api/data', { headers => \%auth, json => { key => 'deep100', value => $deep } });
    is $r->{status}, 201, '100 nested arrays: 201' or diag $r->{body};
    $r = $s->request(GET => '/api/data/deep100', { headers => \%auth });
    # (compared as canonical JSON: is_deeply would recurse 100 levels deep)
    is eval { enc($JSON->decode($r->{body})) }, enc({ status => 'success', data => { key => 'deep100', value => $deep } }),
        '100 nested arrays read back' or diag "status $r->{status}: $r->{body}";

    # The bytes in the table are the keys themselves.
    my $rows = $s->sql("SELECT HEX(k) FROM data WHERE user_id = $M->{user_id} ORDER BY k");
    is_deeply [ map { $_->[0] } @$rows ], [ map { uc unpack 'H*', $_ } sort(@keys, 'deep100') ],
        'stored keys are exactly the bytes sent';

    # Registration fields holding metacharacters are stored as sent.
    my %reg = (username => "meta_$$", email => "o'h%_\\\"x\@example.com",
               password => "'; DROP TABLE users; --", full_name => "Robert'); DROP TABLE users;--", gender => '%_');
    $r = $s->register(%reg);
    is $r->{status}, 201, 'register with metacharacters in email, password, full_name, gender' or diag $r->{body};
    my $u = $s->sql("SELECT HEX(email), HEX(full_name), HEX(gender) FROM users WHERE username = 'meta_$$'");
    is_deeply $u, [ [ map { uc unpack 'H*', $_ } @reg{qw(email full_name gender)} ] ], 'stored literally';
    $r = $s->request(POST => '/api/token', { json => { username => "meta_$$", password => $reg{password} } });
    is $r->{status}, 200, 'and that user logs in with the metacharacter password' or diag $r->{body};
    $r = $s->request(POST => '/api/token', { json => { username => "meta_$$", password => "' OR '1'='1" } });
    $s->error_is($r, 'INVALID_CREDENTIALS', 'but not with another');
};

# The rows of the users that existed before are still exactly as they were.
healthy({ %H, users => $H{ids}, snap => $H{snap_ids} }, 'after the literal round trips (rows of the earlier users)');

# ---------------------------------------------------------------------------
# A second stack: a small value_max, then a 1-second token lifetime.

my $s2 = KVTest->start(value_max => 1000);
my $W = $s2->new_user('small');
my %H2;
subtest 'setup: value_max 1000' => sub {
    my %auth = (%{ $s2->auth($W->{token}) }, 'Content-Type' => $BJ);
    my $r = $s2->request(POST => '/api/data', { headers => \%auth, body => '{"key":"k","value":"' . 'x' x 998 . '"}' });
    is $r->{status}, 201, 'a value of exactly 1000 bytes is stored' or diag $r->{body};
    $r = $s2->request(POST => '/api/data', { headers => \%auth, body => '{"key":"esc","value":"' . '\u0041' x 998 . '"}' });
    is $r->{status}, 201, '998 \u0041 escapes: 1000 bytes stored, 6 KB sent' or diag $r->{body};
    my @reads = map {
        [ $W->{token}, "/api/data/$_", $s2->request(GET => "/api/data/$_", { headers => $s2->auth($W->{token}) })->{body} ]
    } qw(k esc);
    like $reads[1][2], qr/"value":"A{998}"/, 'the escapes were stored as 998 A';
    %H2 = (st => $s2, reads => \@reads, pids => [ $s2->worker_pids ]);
    $H2{snap} = db_state($s2);
};

sub D2 { my ($m, $p, $body) = @_; return { m => $m, p => $p, h => hdrs($W->{token}, $BJ), body => $body } }
my @CATALOGUE2 = (
    [ 'value_max: string of 1001 bytes',        'INVALID_VALUE', D2(POST => '/api/data', '{"key":"v1","value":"' . 'x' x 999 . '"}') ],
    [ 'value_max: object of 1001 bytes',        'INVALID_VALUE', D2(POST => '/api/data', '{"key":"v2","value":{"a":"' . 'x' x 993 . '"}}') ],
    [ 'value_max: array of 1001 bytes',         'INVALID_VALUE', D2(POST => '/api/data', '{"key":"v3","value":[' . join(',', (1) x 500) . ']}') ],
    [ 'value_max: 500 × é (1002 bytes)',        'INVALID_VALUE', D2(POST => '/api/data', enc({ key => 'v4', value => 'é' x 500 })) ],
    [ 'value_max: 999 \u0041 escapes',          'INVALID_VALUE', D2(POST => '/api/data', '{"key":"v5","value":"' . '\u0041' x 999 . '"}') ],
    [ 'value_max: PUT 1001 bytes',              'INVALID_VALUE', D2(PUT => '/api/data/k', '{"value":"' . 'y' x 999 . '"}') ],
    [ 'value_max: PUT nested 1001 bytes',       'INVALID_VALUE', D2(PUT => '/api/data/k', '{"value":[["' . 'y' x 995 . '"]]}') ],
);
my $n2 = run_catalogue(\%H2, 100, @CATALOGUE2);
healthy(\%H2, 'after the value_max cases');

my $TE;
subtest 'setup: token_lifetime 1' => sub {
    $s2->restart_app(token_lifetime => 1);
    $H2{pids} = [ $s2->worker_pids ];
    my $r = $s2->request(POST => '/api/token', { json => { username => $W->{username}, password => $W->{password} } });
    is $r->{status}, 200, 'login' or diag $r->{body};
    is $r->{json}{data}{expires_in}, 1, 'expires_in 1';
    $TE = $r->{json}{data}{access_token};
    $r = $s2->request(GET => '/api/data/k', { headers => $s2->auth($TE) });
    is $r->{status}, 200, 'the fresh token works' or diag $r->{body};
    ok(KVTest::poll_until(10, sub {
        $s2->request(GET => '/api/data/k', { headers => $s2->auth($TE) })->{status} == 401 }),
        'and a second later it does not');
};
my @CATALOGUE3 = (
    [ 'expired token: GET',                    'INVALID_TOKEN', { m => 'GET', p => '/api/data/k', h => hdrs($TE) } ],
    [ 'expired token: PUT',                    'INVALID_TOKEN', { m => 'PUT', p => '/api/data/k', h => hdrs($TE, $BJ), body => '{"value":"late"}' } ],
    [ 'expired token: POST',                   'INVALID_TOKEN', { m => 'POST', p => '/api/data', h => hdrs($TE, $BJ), body => '{"key":"late","value":1}' } ],
    [ 'expired token: DELETE key',             'INVALID_TOKEN', { m => 'DELETE', p => '/api/data/k', h => hdrs($TE) } ],
    [ 'expired token: list',                   'INVALID_TOKEN', { m => 'GET', p => '/api/data', h => hdrs($TE) } ],
    [ 'expired token: DELETE /api/token',      'INVALID_TOKEN', { m => 'DELETE', p => '/api/token', h => hdrs($TE) } ],
);
my $n3 = run_catalogue(\%H2, 100, @CATALOGUE3);
healthy(\%H2, 'after the expired-token cases');

note sprintf 'catalogue: %d cases on the main stack, %d + %d on the second', $n_main, $n2, $n3;
ok $n_main + $n2 + $n3 >= 60, 'at least 60 distinct hostile requests';

$s2->stop;
$s->stop;
done_testing;
