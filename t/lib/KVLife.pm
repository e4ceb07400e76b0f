package KVLife;

# Helpers of the data lifecycle tests (issue 15, API.md "Data lifecycle":
# t/31-ttl.t, t/32-patch.t, t/33-quota.t, t/92-races-lifecycle.t): data
# requests with a JSON or raw body, the answers of POST, PUT and PATCH
# asserted whole with their ETag, a read asserted whole with or without
# expires_at (member order key, value, expires_at; the time UTC, to the
# second, within the window the write was made in), the stored text of a
# value, waiting for a key with a TTL to expire, and the usage and quota
# of GET /api/users/me.
#
#   use KVLife qw(:all);
#   my $r = dreq($s, $u, POST => '/api/data', { key => 'k', value => 1, ttl => 60 });
#   my $t = stored_ok($r, 'k', 'POST with a ttl');             # returns the ETag
#   read_ok(dreq($s, $u, GET => '/api/data/k'), 'k', 1, 'GET', ttl => 60, t0 => $t0, t1 => $t1);
#   usage_ok($s, $u, 2, 18, 'two keys', quota_keys => 20);

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP ();
use Test::More ();
use Time::HiRes qw(time);
use Time::Local qw(timegm);
use KVTest qw(json_is kpath show);

our @EXPORT_OK = qw(dreq post_kv stored_ok updated_ok deleted_ok read_ok
    stored_text rows_of expires_of wait_expired usage_ok me_data utc
    $CT $ETAG $TTL_MAX);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our $CT = 'application/json; charset=utf-8';
our $ETAG = qr/\A"[0-9a-f]{16}"\z/;
our $TTL_MAX = 31536000;
my $J = JSON::PP->new->utf8->canonical->allow_nonref;

# A data request of user $u ({token}) on stack $s.  $body: a hash or array
# (sent as JSON), a string (sent as it is), or undef (no body).  ct =>
# the Content-Type of a body (default application/json; undef: none),
# headers => more headers, token => another token (undef: none).
sub dreq {
    my ($s, $u, $m, $p, $body, %o) = @_;
    my $tok = exists $o{token} ? $o{token} : $u->{token};
    my %h = (defined $tok ? (Authorization => "Bearer $tok") : (), %{ $o{headers} // {} });
    if (defined $body) {
        $body = $J->encode($body) if ref $body;
        utf8::encode($body) if utf8::is_utf8($body);
        my $ct = exists $o{ct} ? $o{ct} : 'application/json';
        $h{'Content-Type'} = $ct if defined $ct;
    }
    return $s->request($m => $p, { headers => \%h, defined $body ? (body => $body) : () });
}

sub post_kv {
    my ($s, $u, $key, $value, %extra) = @_;
    return dreq($s, $u, POST => '/api/data', { key => $key, value => $value, %extra });
}

# One test each: the whole answer of a POST (201, Location), a PUT or
# PATCH (200), a DELETE.  They return the ETag sent (POST, PUT, PATCH).
sub stored_ok {
    my ($r, $key, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 201, 'status 201') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        Test::More::is($r->{headers}{location}, kpath($key), 'Location');
        Test::More::like($r->{headers}{etag} // '', $ETAG, 'ETag');
        json_is($r, { status => 'success', message => 'Data stored successfully.' }, 'whole body');
    });
    return $r->{headers}{etag};
}

sub updated_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 200, 'status 200') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        Test::More::like($r->{headers}{etag} // '', $ETAG, 'ETag');
        json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'whole body');
    });
    return $r->{headers}{etag};
}

sub deleted_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 200, 'status 200') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'whole body');
    });
}

# "YYYY-MM-DDTHH:MM:SSZ" of an epoch second.
sub utc {
    my @t = gmtime $_[0];
    return sprintf '%04d-%02d-%02dT%02d:%02d:%02dZ', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
}

sub _epoch {
    my ($t) = @_;
    return undef unless defined $t && !ref $t
        && $t =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\z/;
    return eval { timegm($6, $5, $4, $3, $2 - 1, $1) };
}

# The expires_at of a decoded read (or listing item) as an epoch, or undef.
sub expires_of {
    my ($d) = @_;
    return ref $d eq 'HASH' ? _epoch($d->{expires_at}) : undef;
}

# One test: $r is the 200 of GET /api/data/{key} for $key holding $value,
# whole body, ETag, and the members in the order key, value[, expires_at].
# Without ttl/expires: no expires_at member at all.  ttl => N with t0, t1
# (the times before and after the write that set it): expires_at is the
# write's time + N, truncated to the second, so within [t0 + N, t1 + N]
# whole seconds.  expires => E (an epoch): exactly E.  text => the value's
# exact compact text in the body.  Returns expires_at's epoch.
sub read_ok {
    my ($r, $key, $value, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $d = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {};
    my $want_exp = defined $o{ttl} || defined $o{expires};
    my $e = expires_of($d);
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 200, 'status 200') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        Test::More::like($r->{headers}{etag} // '', $ETAG, 'ETag');
        my $ok_exp;
        if (defined $o{expires}) {
            $ok_exp = defined $e && $e == $o{expires};
            Test::More::ok($ok_exp, 'expires_at ' . show($d->{expires_at}, 60) . ' is ' . utc($o{expires}));
        } elsif (defined $o{ttl}) {
            my ($lo, $hi) = (int($o{t0}) + $o{ttl}, int($o{t1}) + $o{ttl});
            $ok_exp = defined $e && $e >= $lo && $e <= $hi;
            Test::More::ok($ok_exp, 'expires_at ' . show($d->{expires_at}, 60) . ": RFC 3339 UTC with Z, the write's time + $o{ttl} s ("
                . utc($lo) . ($hi > $lo ? ' .. ' . utc($hi) : '') . ')');
        }
        json_is($r, { status => 'success', data => { key => $key, value => $value,
            $want_exp ? (expires_at => $ok_exp ? $d->{expires_at} : 'a time in the window') : () } }, 'whole body');
        my $kre = qr/"(?:[^"\\]|\\.)*"/;
        if ($want_exp) {
            Test::More::like($r->{body}, qr/\A\{"status":"success","data":\{"key":$kre,"value":.*,"expires_at":"[^"]*"\}\}\z/s,
                'members in the order key, value, expires_at');
        } else {
            Test::More::like($r->{body}, qr/\A\{"status":"success","data":\{"key":$kre,"value":.*\}\}\z/s,
                'members in the order key, value');
        }
        if (defined $o{text}) {
            my ($v) = $r->{body} =~ /\A\{"status":"success","data":\{"key":$kre,"value":(.*?)(?:,"expires_at":"[^"]*")?\}\}\z/s;
            Test::More::is($v, $o{text}, 'the value is the compact text ' . show($o{text}, 120));
        }
    });
    return $e;
}

# The stored text of $u's $key (the v column, as bytes), or undef when
# no row.  Read as hex: the client of sql() turns 4-byte UTF-8 into "?".
sub stored_text {
    my ($s, $u, $key) = @_;
    my $hex = unpack 'H*', do { my $k = $key; utf8::encode($k); $k };
    my $rows = $s->sql("SELECT HEX(v) FROM data WHERE user_id = $u->{user_id} AND k = UNHEX('$hex')");
    return @$rows ? pack('H*', $rows->[0][0]) : undef;
}

# How many rows $u has in the data table (with keys LIKE $like if given:
# ASCII letters and digits only).
sub rows_of {
    my ($s, $u, $like) = @_;
    die "rows_of: $like" if defined $like && $like !~ /\A[A-Za-z0-9_]*%?\z/;
    return $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id}"
        . (defined $like ? " AND k LIKE '$like'" : ''))->[0][0];
}

# Poll GET $key until it answers 404 (at most $limit s, default 10).
# Returns (the 404 answer or the last one, the time it was seen gone).
sub wait_expired {
    my ($s, $u, $key, $limit) = @_;
    my ($r, $t);
    KVTest::poll_until($limit // 10, sub {
        $r = dreq($s, $u, GET => kpath($key));
        $t = time;
        ($r->{status} // 0) == 404;
    });
    return ($r, $t);
}

# The data of GET /api/users/me for $u.
sub me_data {
    my ($s, $u) = @_;
    my $r = $s->request(GET => '/api/users/me', { headers => $s->auth($u->{token}) });
    return ($r, ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {});
}

# One test: GET /api/users/me of $u (a new_user) is its whole profile
# with usage {keys, bytes} and quota {keys, bytes} (quota_keys, quota_bytes
# if not the defaults).
sub usage_ok {
    my ($s, $u, $keys, $bytes, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($r, $d) = me_data($s, $u);
    my $created = !ref $d->{created_at} && _epoch($d->{created_at}) ? $d->{created_at} : 'a time';
    Test::More::subtest($name => sub {
        Test::More::is($r->{status}, 200, 'status 200') or Test::More::diag($r->{body});
        Test::More::is($r->{headers}{'content-type'}, $CT, 'Content-Type');
        json_is($r, { status => 'success', data => {
            user_id => "$u->{user_id}", username => $u->{username}, email => $u->{email},
            full_name => $u->{full_name}, age => undef, gender => undef, created_at => $created,
            usage => { keys => 0 + $keys, bytes => 0 + $bytes },
            quota => { keys => 0 + ($o{quota_keys} // 100000), bytes => 0 + ($o{quota_bytes} // 104857600) },
        } }, "whole profile: usage $keys keys, $bytes bytes");
    });
}

1;
