package KVAccount;

# Helpers of the account and session tests (t/21-24, t/92-races-accounts,
# the account cases of t/70, t/86 and t/95): logins with a chosen
# User-Agent, the token answer of both grants asserted whole, the refresh
# grant, whether a token still works, the session list, and a search of
# every table for what a deleted user left behind.  API.md "Accounts and
# sessions" and the decisions of issue 14.
#
#   use KVAccount qw(:all);
#   my $t = login_ok($s, $u, 'log in', ua => 'app/1.0');  # {access, refresh, session}
#   my $n = token_ok(refresh($s, $t->{refresh}), 'rotate', session => $t->{session});
#   grant_error($s, refresh($s, $t->{refresh}), 'the old one is consumed');
#   token_dead($s, $t->{access}, 'reuse ended the session');

use strict;
use warnings;

use Digest::SHA qw(sha256 sha256_hex);
use Exporter qw(import);
use MIME::Base64 qw(decode_base64url);
use Test::More ();
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use KVTest qw(json_is);

our @EXPORT_OK = qw(token_req login login_ok token_ok refresh grant_error
    refresh_dead token_works token_dead sessions_of session_items rfc3339
    user_req trace_rows wait_refresh_expired $CT $B64 $WWW_NONE $WWW_BAD
    $REFRESH_LIFETIME);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our $CT = 'application/json; charset=utf-8';
our $B64 = qr/[A-Za-z0-9_-]/;
our $WWW_NONE = 'Bearer realm="kvapi"';
our $WWW_BAD = 'Bearer realm="kvapi", error="invalid_token"';
our $REFRESH_LIFETIME = 2592000;

# POST /api/token with $body (a hash, or raw JSON text).  ua => the
# User-Agent to send: undef sends none, and a value HTTP::Tiny refuses or
# replaces (empty, control characters, bytes over 0x7e) goes over a raw
# socket (a string of characters as UTF-8, a string of bytes as it is).  Without ua, KVTest's agent ("kvtest").
sub token_req {
    my ($s, $body, %o) = @_;
    my $text = ref $body ? $KVTest::JSON->encode($body) : $body;
    if (exists $o{ua} && (!defined $o{ua} || $o{ua} eq '' || $o{ua} =~ /[^\x20-\x7e]/)) {
        my $ua = $o{ua};
        utf8::encode($ua) if defined $ua && utf8::is_utf8($ua);    # characters go as UTF-8
        $ua = defined $ua ? "User-Agent: $ua\r\n" : '';
        return $s->raw("POST /api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n$ua"
            . "Content-Type: application/json\r\nContent-Length: " . length($text)
            . "\r\nConnection: close\r\n\r\n$text");
    }
    return $s->request(POST => '/api/token', { body => $text, headers => {
        'Content-Type' => 'application/json', exists $o{ua} ? ('User-Agent' => $o{ua}) : () } });
}

# The password grant for user $u ({username, password}); password =>,
# username => override, extra => {more members}, ua => as token_req.
sub login {
    my ($s, $u, %o) = @_;
    return token_req($s, {
        username => exists $o{username} ? $o{username} : $u->{username},
        password => exists $o{password} ? $o{password} : $u->{password},
        %{ $o{extra} // {} } }, exists $o{ua} ? (ua => $o{ua}) : ());
}

# The refresh grant; extra => {more members}, ua => as token_req.
sub refresh {
    my ($s, $rt, %o) = @_;
    return token_req($s, { grant_type => 'refresh_token', refresh_token => $rt,
        %{ $o{extra} // {} } }, exists $o{ua} ? (ua => $o{ua}) : ());
}

# One test: $r is the 200 of either grant, whole body (decisions: the
# same message and members for both).  lifetime => expires_in (3600),
# refresh_lifetime => refresh_expires_in (2592000), session => the
# session_id it must carry.  Returns {access, refresh, session} (undef
# members when the answer lacks them).
sub token_ok {
    my ($r, $name, %o) = @_;
    my $d = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {};
    my %t = (access => $d->{access_token}, refresh => $d->{refresh_token}, session => $d->{session_id});
    for (values %t) { undef $_ if ref $_ }
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 200, 'status 200') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        Test::More::is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
        Test::More::like($t{access} // '', qr/\A$B64{43}\z/, 'access_token: 43 base64url characters');
        Test::More::like($t{refresh} // '', qr/\A$B64{43}\z/, 'refresh_token: 43 base64url characters');
        Test::More::like($t{session} // '', qr/\A$B64{22}\z/, 'session_id: 22 base64url characters');
        Test::More::isnt($t{access} // 'a', $t{refresh} // 'r', 'the refresh token is not the access token');
        Test::More::is($t{session}, $o{session}, 'the same session_id') if defined $o{session};
        json_is($r, {
            status  => 'success',
            message => 'Access token generated successfully.',
            data    => KVTest::token_data($r, $o{lifetime}, $o{refresh_lifetime} // $REFRESH_LIFETIME),
        }, 'whole body');
    });
    return \%t;
}

# Log $u in and assert the answer (token_ok's options; ua and the login
# options go to login).
sub login_ok {
    my ($s, $u, $name, %o) = @_;
    my %l = map { exists $o{$_} ? ($_ => delete $o{$_}) : () } qw(ua password username extra);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return token_ok(login($s, $u, %l), $name, %o);
}

# One test: INVALID_GRANT exactly, and no WWW-Authenticate (it is not a
# Bearer challenge).
sub grant_error {
    my ($s, $r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name => sub {
        $s->error_is($r, 'INVALID_GRANT', 'INVALID_GRANT');
        Test::More::ok(!defined $r->{headers}{'www-authenticate'}, 'no WWW-Authenticate')
            or Test::More::diag("WWW-Authenticate: $r->{headers}{'www-authenticate'}");
    });
}

# One test: refresh token $rt no longer rotates (INVALID_GRANT).  A
# missing token fails: it would prove nothing.
sub refresh_dead {
    my ($s, $rt, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::fail("$name (no refresh token to try)") unless defined $rt;
    grant_error($s, refresh($s, $rt), $name);
}

# One test: access token $tok is valid, seen from a data route (a missing
# key: 404 KEY_NOT_FOUND, not 401).
sub token_works {
    my ($s, $tok, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::fail("$name (no token to try)") unless defined $tok;
    $s->error_is($s->request(GET => '/api/data/kvaccount-probe', { headers => $s->auth($tok) }),
        'KEY_NOT_FOUND', $name);
}

# One test: access token $tok is refused: INVALID_TOKEN with the
# refused-credentials challenge.
sub token_dead {
    my ($s, $tok, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::fail("$name (no token to try)") unless defined $tok;
    my $r = $s->request(GET => '/api/data/kvaccount-probe', { headers => $s->auth($tok) });
    Test::More::subtest($name => sub {
        $s->error_is($r, 'INVALID_TOKEN', 'INVALID_TOKEN');
        Test::More::is($r->{headers}{'www-authenticate'}, $WWW_BAD, 'WWW-Authenticate');
    });
}

# GET /api/sessions with access token $tok.
sub sessions_of {
    my ($s, $tok, $path) = @_;
    return $s->request(GET => $path // '/api/sessions', { headers => $s->auth($tok) });
}

# The items of a GET /api/sessions answer ([] when it has none).
sub session_items {
    my ($r) = @_;
    my $j = $r->{json};
    return ref $j eq 'HASH' && ref $j->{data} eq 'HASH' && ref $j->{data}{items} eq 'ARRAY'
        ? $j->{data}{items} : [];
}

# Seconds since the epoch of an RFC 3339 UTC time of seconds precision
# with a Z (decisions: "2026-12-01T09:00:00Z"), or undef for anything
# else.
sub rfc3339 {
    my ($t) = @_;
    return undef unless defined $t && !ref $t
        && $t =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\z/;
    return eval { timegm($6, $5, $4, $3, $2 - 1, $1) };
}

# A request with a JSON body (a hash, or raw text with ct =>) to one of
# the account routes, with access token $tok (undef: no Authorization).
sub user_req {
    my ($s, $m, $p, $tok, $body, %o) = @_;
    my %h = (defined $tok ? %{ $s->auth($tok) } : (), %{ $o{headers} // {} });
    if (defined $body) {
        $h{'Content-Type'} = exists $o{ct} ? $o{ct} : 'application/json';
        delete $h{'Content-Type'} unless defined $h{'Content-Type'};
        $body = $KVTest::JSON->encode($body) if ref $body;
    }
    return $s->request($m => $p, { headers => \%h, defined $body ? (body => $body) : () });
}

# Rows of any table of the stack's database that still hold a trace of a
# user: user_id => N (columns named user_id, and users.id), and
# strings => [...] (tokens, session ids: found as they are, as base64url
# decoded bytes, and as their SHA-256 in binary or hex) in any text or
# binary column; foreign keys that point nowhere too.  Returns
# ["table.column: n rows", ...], empty when nothing is left.
sub trace_rows {
    my ($s, %o) = @_;
    my @hex;
    for my $str (@{ $o{strings} // [] }) {
        next unless defined $str;
        my @forms = ($str, sha256($str), sha256_hex($str), uc sha256_hex($str));
        if ($str =~ /\A$B64+\z/) {
            my $raw = decode_base64url($str);
            push @forms, $raw, sha256($raw), sha256_hex($raw);
        }
        push @hex, map { uc unpack 'H*', $_ } @forms;
    }
    my $in = join ', ', map { "'$_'" } @hex;
    my $cols = $s->sql("SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS"
        . " WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION");
    my @q;
    for my $c (@$cols) {
        my ($t, $col, $type) = @$c;
        if (defined $o{user_id} && ($col eq 'user_id' || ($t eq 'users' && $col eq 'id'))) {
            push @q, "SELECT '$t.$col', COUNT(*) FROM `$t` WHERE `$col` = $o{user_id};";
        }
        if (@hex && $type =~ /char|binary|text|blob/i) {
            push @q, "SELECT '$t.$col holds a token or session id', COUNT(*) FROM `$t` WHERE HEX(`$col`) IN ($in);";
        }
    }
    my $fks = $s->sql("SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME"
        . " FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE()"
        . " AND REFERENCED_TABLE_NAME IS NOT NULL");
    for my $f (@$fks) {
        my ($t, $col, $rt, $rc) = @$f;
        push @q, "SELECT '$t.$col points to no $rt.$rc', COUNT(*) FROM `$t` c LEFT JOIN `$rt` p"
            . " ON c.`$col` = p.`$rc` WHERE c.`$col` IS NOT NULL AND p.`$rc` IS NULL;";
    }
    return [ map { "$_->[0]: $_->[1] rows" } grep { $_->[1] } @{ $s->sql(join "\n", @q) } ];
}

# Wait, under a deadline of $deadline seconds, until the server refuses
# refresh tokens minted now as expired.  $n sacrificial sessions of user
# $u are opened at once, then tried with the refresh grant one by one,
# oldest first: the first INVALID_GRANT means the refresh lifetime of a
# session opened after every earlier one has passed, so theirs has too.
# Returns (answers seen, status of the first) when it saw the expiry, an
# empty list when the deadline passed or the sessions ran out.
sub wait_refresh_expired {
    my ($s, $u, $n, $deadline) = @_;
    my @probes = map { login($s, $u)->{json}{data}{refresh_token} } 1 .. $n;
    my $t0 = time;
    my ($tries, $first) = (0);
    for my $rt (grep { defined } @probes) {
        my $r = refresh($s, $rt);
        $tries++;
        $first //= $r->{status};
        return ($tries, $first) if $r->{status} == 401;
        last if time - $t0 > $deadline;
        sleep 0.1;
    }
    return;
}

1;
