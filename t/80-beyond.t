# API.md "Beyond the seed": DELETE /api/token (revocation), GET /api/data
# (listing: byte order, prefix taken literally, limit, cursor, INVALID_QUERY,
# stable under concurrent writes), ETag / If-None-Match / If-Match (304,
# 412, "*", 404 before 412, atomic check-and-write under a race, a new ETag
# for a re-created key) and GET /api/health with the database stopped and
# started again.  Decisions: docs/decisions.md "ETags and listing".
use strict;
use warnings;
use utf8;
use Digest::SHA qw(sha256_hex);
use HTTP::Tiny;
use IO::Select;
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use POSIX ();
use Socket ();
use Time::HiRes qw(time sleep);
use Test::More;
use lib 't/lib';
use KVTest qw(poll_until show kpath);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';
my $J = JSON::PP->new->utf8->canonical;
my $ETAG_RE = qr/\A"[0-9a-f]{16}"\z/;

# The database must be ours to stop (health); four workers for the
# concurrent clients.
my $s = KVTest->start(private_db => 1, workers => 4);


# Percent-encode every byte of a key's UTF-8 but the unreserved ones.
sub enc {
    my ($text) = @_;
    utf8::encode($text);
    $text =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $text;
}

sub req {
    my ($u, $method, $path, %o) = @_;
    return $s->request($method => $path, {
        headers => { %{ $u ? $s->auth($u->{token}) : {} }, %{ $o{h} || {} } },
        exists $o{json} ? (json => $o{json}) : () });
}

# The whole answer: status, Content-Type, body (decoded JSON, compared
# with is_deeply).
sub answer_is {
    my ($r, $status, $body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        is $r->{status}, $status, "status $status" or diag show($r->{body});
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        my $got = eval { $J->decode($r->{body}) };
        is_deeply $got, $body, 'whole body' or diag show($r->{body});
    };
}

sub msg { { status => 'success', message => $_[0] } }

# A client of our own on a kept-alive connection (HTTP::Tiny reconnects
# when nginx closes one), for the thousands of requests below.  HTTP::Tiny
# writes a request's head and body apart: on a kept-alive connection
# Nagle's algorithm then holds the body until the server's delayed ACK,
# 40 ms a request, unless TCP_NODELAY is set.
package NoDelayTiny {
    use parent -norequire, 'HTTP::Tiny';
    sub _open_handle {
        my $self = shift;
        my $h = $self->SUPER::_open_handle(@_);
        setsockopt($h->{fh}, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1) or die "TCP_NODELAY: $!";
        return $h;
    }
}
sub client { NoDelayTiny->new(keep_alive => 1, max_redirect => 0, timeout => 60, agent => 'kvtest-80') }

sub call {
    my ($http, $u, $method, $path, $json, $h) = @_;
    my $res = $http->request($method, $s->base_url . $path, {
        headers => { Authorization => "Bearer $u->{token}", %{ $h || {} },
            defined $json ? ('Content-Type' => 'application/json') : () },
        defined $json ? (content => $J->encode($json)) : () });
    return $res;
}

# Run $n children, each with its own kept-alive client; child $i runs
# $code->($http, $i) and prints what it returns (one line) to the parent,
# which calls $forked->() once all run.  Returns the lines in child order.
sub in_children {
    my ($n, $code, $forked) = @_;
    my @kids;
    for my $i (0 .. $n - 1) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my $out = eval { $code->(client(), $i) } // "died: $@";
            print {$wr} $out;
            close $wr;
            POSIX::_exit(0);    # no END blocks: the stack belongs to the parent
        }
        close $wr;
        push @kids, [ $pid, $rd ];
    }
    $forked->() if $forked;
    my @out;
    for (@kids) {
        my ($pid, $rd) = @$_;
        local $/;
        push @out, scalar(<$rd>) // 'none';
        waitpid $pid, 0;
    }
    return @out;
}

# Store pairs [key, value] through the API: POSTs from $n clients at once.
sub bulk_post {
    my ($u, $pairs, $n) = @_;
    my @out = in_children($n, sub {
        my ($http, $i) = @_;
        my ($ok, @bad) = (0);
        for my $j (grep { $_ % $n == $i } 0 .. $#$pairs) {
            my ($k, $v) = @{ $pairs->[$j] };
            my $r = call($http, $u, POST => '/api/data', { key => $k, value => $v });
            $r->{status} == 201 ? $ok++ : push @bad, "$r->{status} " . show($k);
        }
        return join ' ', $ok, @bad[0 .. ($#bad < 2 ? $#bad : 2)];
    });
    my $ok = 0;
    $ok += (split / /, $_)[0] for @out;
    return ($ok, grep { !/^\d+$/ } @out);
}

# Walk a listing with $query (prefix etc., without cursor) and $http or
# the harness; returns (keys, items, pages, page sizes, problems).
sub walk {
    my ($u, $query, %o) = @_;
    my (@items, @sizes, @problems);
    my $cursor;
    for my $page (1 .. 100_000) {
        my $q = join '&', grep { length } $query, defined $cursor ? 'cursor=' . $cursor : ();
        my $path = '/api/data' . (length $q ? "?$q" : '');
        my ($status, $body) = $o{http}
            ? @{ call($o{http}, $u, GET => $path) }{qw(status content)}
            : @{ req($u, GET => $path) }{qw(status body)};
        my $j = eval { $J->decode($body) };
        if ($status != 200 || ref $j ne 'HASH' || ref $j->{data} ne 'HASH' || ref $j->{data}{items} ne 'ARRAY') {
            push @problems, "page $page: $status " . show($body);
            last;
        }
        push @problems, "page $page: body members " . join(',', sort keys %$j)
            unless join(',', sort keys %$j) eq 'data,status' && $j->{status} eq 'success';
        push @problems, "page $page: data members " . join(',', sort keys %{ $j->{data} })
            unless join(',', sort keys %{ $j->{data} }) eq 'items,next_cursor';
        push @sizes, scalar @{ $j->{data}{items} };
        push @items, @{ $j->{data}{items} };
        $cursor = $j->{data}{next_cursor};
        last unless defined $cursor;
        push @problems, "page $page: an empty page before the end" unless @{ $j->{data}{items} };
        push @problems, "page $page: cursor " . show($cursor) unless $cursor =~ /\A[A-Za-z0-9_-]+\z/;
    }
    my @keys = map { $_->{key} } @items;
    return (\@keys, \@items, \@sizes, \@problems);
}

# Keys in byte order of their UTF-8.
sub byte_sorted {
    return map { $_->[1] } sort { $a->[0] cmp $b->[0] }
        map { my $b = $_; utf8::encode($b); [ $b, $_ ] } @_;
}

sub starts_with { my ($k, $p) = @_; return substr($k, 0, length $p) eq $p }

# ---------------------------------------------------------------------------

subtest 'DELETE /api/token revokes the presented token' => sub {
    my $u = $s->new_user('logout');
    my $r = $s->request(POST => '/api/token', { json => { username => $u->{username}, password => $u->{password} } });
    is $r->{status}, 200, 'a second token' or return;
    my $other = { token => $r->{json}{data}{access_token} };
    answer_is(req($u, POST => '/api/data', json => { key => 'mine', value => 1 }), 201,
        msg('Data stored successfully.'), 'the token works');
    answer_is(req($u, DELETE => '/api/token'), 200, msg('Access token revoked.'), 'DELETE /api/token');
    my $hash = sha256_hex($u->{token});
    is $s->sql("SELECT COUNT(*) FROM tokens WHERE token_hash = UNHEX('$hash')")->[0][0], 0,
        'its hash is gone from the tokens table';
    for ([ GET => kpath('mine') ], [ GET => '/api/data' ], [ DELETE => '/api/token' ]) {
        my $r = req($u, @$_);
        $s->error_is($r, 'INVALID_TOKEN', "@$_ with the revoked token");
        is $r->{headers}{'www-authenticate'}, 'Bearer realm="kvapi", error="invalid_token"',
            "@$_: WWW-Authenticate names the refused token";
    }
    answer_is(req($other, GET => kpath('mine')), 200,
        { status => 'success', data => { key => 'mine', value => 1 } }, 'the other token of the user still works');
    my $none = req(undef, DELETE => '/api/token');
    $s->error_is($none, 'INVALID_TOKEN', 'DELETE /api/token without a token');
    is $none->{headers}{'www-authenticate'}, 'Bearer realm="kvapi"', 'WWW-Authenticate without error';
    $s->error_is(req({ token => 'x' x 43 }, DELETE => '/api/token'), 'INVALID_TOKEN', 'an unknown token');
    $s->error_is(req({ token => 'short' }, DELETE => '/api/token'), 'INVALID_TOKEN', 'a malformed token');
    answer_is(req($other, DELETE => '/api/token'), 200, msg('Access token revoked.'), 'the other token revoked too');
    $s->error_is(req($other, GET => kpath('mine')), 'INVALID_TOKEN', 'and refused');
    $r = $s->request(POST => '/api/token', { json => { username => $u->{username}, password => $u->{password} } });
    is $r->{status}, 200, 'logging in again gives a working token';
    is req({ token => $r->{json}{data}{access_token} }, GET => kpath('mine'))->{status}, 200, 'which reads the data';
};

# 2,500 keys in groups that test byte order (upper case before lower case,
# UTF-8 after ASCII) and literal prefixes (%, _ and \ are LIKE's
# metacharacters; bX would match b_ and b% if they were wildcards).
my @GROUPS = ([ 'a/', 400 ], [ 'ab', 300 ], [ 'b%', 100 ], [ 'b_', 100 ], [ 'bX', 100 ],
    [ 'b\\', 50 ], [ 'bb', 50 ], [ 'é', 200 ], [ 'Z', 300 ], [ '~', 100 ], [ 'k ', 100 ], [ 'x', 700 ]);
my (@PAIRS, %VALUE);
for my $g (@GROUPS) {
    my ($p, $n) = @$g;
    for my $i (1 .. $n) {
        my $k = sprintf '%s%04d', $p, $i;
        # Values of every JSON type.
        my $v = (\$i, \"v$i", \{ n => $i, k => $k }, \[ $i, JSON::PP::true ])[ $i % 4 ];
        push @PAIRS, [ $k, $$v ];
        $VALUE{$k} = $$v;
    }
}
my @ALL = byte_sorted(keys %VALUE);
my $L = $s->new_user('list');

subtest 'store 2,500 keys through the API' => sub {
    my $t0 = time;
    my ($ok, @bad) = bulk_post($L, \@PAIRS, 5);
    is $ok, scalar @PAIRS, scalar(@PAIRS) . ' POSTs answered 201' or diag "@bad";
    note sprintf '%.1f s', time - $t0;
    # Another user's keys with the same prefixes must never show.
    my $other = $s->new_user('list_other');
    my ($ok2) = bulk_post($other, [ map { [ "$_->[0]0000", 'other' ] } @GROUPS ], 2);
    is $ok2, scalar @GROUPS, "another user's keys";
};

my $HTTP = client();

subtest 'every key in byte order, whole pages, for several limits' => sub {
    for my $limit (undef, 1000, 999, 500, 7) {
        my $q = defined $limit ? "limit=$limit" : '';
        # The long walk on our kept-alive client, the others through the
        # harness (which records them for t/81-openapi.t).
        my ($keys, $items, $sizes, $problems) = walk($L, $q, $limit && $limit < 100 ? (http => $HTTP) : ());
        my $n = $limit // 100;
        subtest 'limit ' . ($limit // 'default (100)') => sub {
            is_deeply $problems, [], 'well-formed pages';
            ok $keys->[0] eq $ALL[0] && @$keys == @ALL, scalar(@$keys) . ' keys' or diag "first " . show($keys->[0]);
            is_deeply $keys, \@ALL, 'all keys once, in byte order';
            is_deeply $items, [ map { { key => $_, value => $VALUE{$_} } } @ALL ], 'every item is {key, value} with its value';
            my $pages = int((@ALL + $n - 1) / $n);
            is_deeply $sizes, [ ($n) x ($pages - 1), @ALL - $n * ($pages - 1) ], "$pages pages of $n, the rest on the last";
        };
    }
};

subtest 'prefix matches literally' => sub {
    for my $case ([ 'b%', 'b%25' ], [ 'b_', 'b_' ], [ 'b\\', 'b%5C' ], [ 'b', 'b' ], [ 'a/', 'a%2F' ],
                  [ 'a/', 'a/' ], [ 'é', '%C3%A9' ], [ 'é00', '%C3%A900' ], [ 'k ', 'k+' ], [ 'k ', 'k%20' ],
                  [ 'x0700', 'x0700' ], [ 'Z', 'Z' ], [ 'z', 'z' ], [ '%', '%25' ], [ '_', '_' ],
                  [ 'nothing', 'nothing' ], [ '', '' ]) {
        my ($prefix, $text) = @$case;
        my @want = grep { starts_with($_, $prefix) } @ALL;
        for my $limit (1, 30, 1000) {
            next if $limit == 1 && @want > 120;
            my ($keys, $items, $sizes, $problems) = walk($L, "prefix=$text&limit=$limit", http => $HTTP);
            my $ok = !@$problems && (join("\0", @$keys) eq join("\0", @want))
                && !grep { $_ > $limit } @$sizes;
            ok $ok, sprintf 'prefix=%s limit=%d: %d keys, %d pages', $text, $limit, scalar @want, scalar @$sizes
                or diag explain { problems => $problems, got => [ @$keys[0 .. 4] ], count => scalar @$keys };
        }
    }
    answer_is(req($L, GET => '/api/data?prefix=nothing'), 200,
        { status => 'success', data => { items => [], next_cursor => undef } }, 'no match: an empty page, next_cursor null');
    my @x = grep { starts_with($_, 'x07') } @ALL;
    answer_is(req($L, GET => '/api/data?prefix=x07&limit=1000'), 200,
        { status => 'success', data => { items => [ map { { key => $_, value => $VALUE{$_} } } @x ], next_cursor => undef } },
        'one whole page: next_cursor null');
    is req($L, GET => '/api/data?limit=3&foo=bar&prefix=ab')->{json}{data}{items}[0]{key}, 'ab0001',
        'unknown parameters are ignored';
};

subtest 'INVALID_QUERY' => sub {
    my $long = 'a' x 256;
    for my $q ('limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'limit',
               'limit=%2B5', 'limit=+5', 'limit=1e2', 'limit=5&limit=5', 'limit=5&limit=6',
               'limit=%095', 'limit=%0A5', 'limit=5%00x', 'limit=0005%00',
               'prefix=a&prefix=a', 'prefix=%01', "prefix=$long", 'prefix=%zz', 'prefix=%C3',
               'cursor=', 'cursor=!!!!', 'cursor=YQ%3D%3D', 'cursor=YR', 'cursor=AQ', 'cursor=_w',
               'cursor=' . encode_base64url('a' x 256), 'cursor=YQ&cursor=YQ', 'cursor') {
        $s->error_is(req($L, GET => "/api/data?$q"), 'INVALID_QUERY', $q);
    }
    $s->error_is(req(undef, GET => '/api/data?limit=0'), 'INVALID_TOKEN', 'authentication comes first');
    # A cursor is only a position: one made by hand for a key is accepted.
    my $r = req($L, GET => '/api/data?limit=2&cursor=' . encode_base64url('ab0298'));
    is_deeply [ map { $_->{key} } @{ $r->{json}{data}{items} } ], [ 'ab0299', 'ab0300' ], 'a cursor starts strictly after its key';
};

subtest 'a walk is stable while another client inserts and deletes' => sub {
    my $u = $s->new_user('churn');
    my @stable = map { sprintf 'm%04d', 2 * $_ } 0 .. 399;
    my ($ok) = bulk_post($u, [ map { [ $_, 1 ] } @stable ], 4);
    is $ok, scalar @stable, scalar(@stable) . ' keys that stay';
    # The churn: keys between, before and after the stable ones come and
    # go until the parent says stop.
    pipe(my $stop_r, my $stop_w) or die "pipe: $!";
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $stop_w;
        close $rd;
        my $http = client();
        my ($ins, $del, $bad, $i) = (0, 0, 0, 0);
        my $sel = IO::Select->new($stop_r);
        my @live;
        until ($sel->can_read(0)) {
            my $k = (sprintf('m%04d', 2 * int(rand 400) + 1), 'l' . $i, 'm' . $i, 'n' . $i)[ $i % 4 ];
            $i++;
            my $r = call($http, $u, POST => '/api/data', { key => $k, value => 2 });
            if ($r->{status} == 201) { $ins++; push @live, $k }
            elsif ($r->{status} != 409) { $bad++ }
            if (@live > 20) {
                my $d = splice @live, int(rand @live), 1;
                $r = call($http, $u, DELETE => kpath($d));
                $r->{status} == 200 ? $del++ : $bad++;
            }
        }
        print {$wr} "$ins $del $bad";
        close $wr;
        POSIX::_exit(0);
    }
    close $stop_r;
    close $wr;
    # The walks start once the churn is under way: its keys are in the
    # table (it keeps about 20 alive, deleting as it goes).
    ok(poll_until(30, sub {
        $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id} AND k NOT IN ("
            . join(',', map { "'$_'" } @stable) . ')')->[0][0] >= 15 }), 'the churn is under way');
    my %stable = map { $_ => 1 } @stable;
    my $http = client();
    for my $q ('limit=1&prefix=m', 'limit=7', 'limit=50&prefix=m', 'limit=3') {
        my ($keys, undef, undef, $problems) = walk($u, $q, http => $http);
        my %n;
        $n{$_}++ for @$keys;
        my @twice = grep { $n{$_} > 1 } sort keys %n;
        my @missing = grep { !$n{$_} } @stable;
        my @disorder = grep { $keys->[$_ - 1] ge $keys->[$_] } 1 .. $#$keys;
        my @foreign = grep { !/\A(?:[lmn]\d+)\z/ } @$keys;
        subtest "walk $q during the churn" => sub {
            is_deeply $problems, [], 'well-formed pages';
            is_deeply \@twice, [], 'no key twice';
            is_deeply \@missing, [], 'every key that existed throughout';
            is_deeply \@disorder, [], 'strictly ascending across pages';
            is_deeply \@foreign, [], 'nothing but our keys';
            note scalar(@$keys) . ' keys, ' . (@$keys - grep { $stable{$_} } @$keys) . ' of them churning';
        };
    }
    close $stop_w;
    my $counts = do { local $/; <$rd> } // '';
    waitpid $pid, 0;
    my ($ins, $del, $bad) = split ' ', $counts;
    ok $ins && $ins > 20 && $del > 5, 'the churn ran during the walks: ' . ($ins // 0) . ' inserts, ' . ($del // 0) . ' deletes';
    is $bad, 0, 'the churn saw no unexpected answer';
};

subtest 'ETag on POST, GET, HEAD, PUT' => sub {
    my $u = $s->new_user('etag');
    my $r = req($u, POST => '/api/data', json => { key => 'e', value => [ 1 ] });
    my $e1 = $r->{headers}{etag} // '';
    like $e1, $ETAG_RE, 'POST 201: a strong ETag of 16 hex digits';
    $r = req($u, GET => '/api/data/e');
    answer_is($r, 200, { status => 'success', data => { key => 'e', value => [ 1 ] } }, 'GET');
    is $r->{headers}{etag}, $e1, 'GET: the same ETag';
    $r = req($u, HEAD => '/api/data/e');
    is $r->{headers}{etag}, $e1, 'HEAD: the same ETag';
    is req($u, GET => '/api/data/e')->{headers}{etag}, $e1, 'reading does not change it';
    $r = req($u, PUT => '/api/data/e', json => { value => [ 2 ] });
    answer_is($r, 200, msg('Data updated successfully.'), 'PUT');
    my $e2 = $r->{headers}{etag} // '';
    like $e2, $ETAG_RE, 'PUT 200: an ETag';
    isnt $e2, $e1, 'a new one';
    is req($u, GET => '/api/data/e')->{headers}{etag}, $e2, 'GET: the ETag of the PUT';
    $r = req($u, PUT => '/api/data/e', json => { value => [ 2 ] });
    isnt $r->{headers}{etag}, $e2, 'every write is a new version, even of the same value';
    my $other = $s->new_user('etag_other');
    $r = req($other, POST => '/api/data', json => { key => 'e', value => [ 1 ] });
    isnt $r->{headers}{etag}, $e1, "another user's key e has its own ETag";
};

subtest 'If-None-Match: 304' => sub {
    my $u = $s->new_user('inm');
    my $e = req($u, POST => '/api/data', json => { key => 'n', value => { a => 1 } })->{headers}{etag};
    for my $h ($e, "W/$e", '*', qq("0000000000000000", $e), qq( $e , "x")) {
        my $r = req($u, GET => '/api/data/n', h => { 'If-None-Match' => $h });
        subtest "If-None-Match: $h" => sub {
            is $r->{status}, 304, 'status 304';
            is $r->{body}, '', 'no body';
            is $r->{headers}{etag}, $e, 'the ETag';
        };
    }
    my $r = $s->raw("HEAD /api/data/n HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $u->{token}\r\n"
        . "If-None-Match: $e\r\nConnection: close\r\n\r\n");
    is $r->{status}, 304, 'HEAD with a matching If-None-Match: 304';
    for my $h ('"0000000000000000"', 'W/"0000000000000000"', '"abc"', 'garbage') {
        answer_is(req($u, GET => '/api/data/n', h => { 'If-None-Match' => $h }), 200,
            { status => 'success', data => { key => 'n', value => { a => 1 } } }, "If-None-Match: $h: 200");
    }
    $s->error_is(req($u, GET => '/api/data/gone', h => { 'If-None-Match' => '*' }), 'KEY_NOT_FOUND',
        'If-None-Match on a missing key: 404');
};

subtest 'If-Match on PUT and DELETE' => sub {
    my $u = $s->new_user('im');
    my $e = req($u, POST => '/api/data', json => { key => 'c', value => 1 })->{headers}{etag};
    my $stale = '"0000000000000000"';
    my $v = sub { req($u, GET => '/api/data/c')->{json}{data}{value} };

    $s->error_is(req($u, PUT => '/api/data/c', json => { value => 2 }, h => { 'If-Match' => $stale }),
        'PRECONDITION_FAILED', 'PUT with a stale ETag: 412');
    $s->error_is(req($u, PUT => '/api/data/c', json => { value => 2 }, h => { 'If-Match' => "W/$e" }),
        'PRECONDITION_FAILED', 'PUT with the weak form of the ETag: 412 (strong comparison)');
    $s->error_is(req($u, DELETE => '/api/data/c', h => { 'If-Match' => $stale }),
        'PRECONDITION_FAILED', 'DELETE with a stale ETag: 412');
    is $v->(), 1, 'the value is unchanged';
    is req($u, GET => '/api/data/c')->{headers}{etag}, $e, 'and so is the ETag';

    my $r = req($u, PUT => '/api/data/c', json => { value => 2 }, h => { 'If-Match' => $e });
    answer_is($r, 200, msg('Data updated successfully.'), 'PUT with the current ETag');
    my $e2 = $r->{headers}{etag};
    $s->error_is(req($u, PUT => '/api/data/c', json => { value => 3 }, h => { 'If-Match' => $e }),
        'PRECONDITION_FAILED', 'the same ETag again: 412');
    $r = req($u, PUT => '/api/data/c', json => { value => 3 }, h => { 'If-Match' => qq($stale, $e2) });
    answer_is($r, 200, msg('Data updated successfully.'), 'a list that holds the current ETag: 200');
    like $r->{headers}{etag} // '', $ETAG_RE, 'with an ETag';
    isnt $r->{headers}{etag}, $e2, 'a new one';
    is $v->(), 3, 'the value is the PUT\'s';
    $r = req($u, PUT => '/api/data/c', json => { value => 4 }, h => { 'If-Match' => '*' });
    answer_is($r, 200, msg('Data updated successfully.'), 'If-Match: * on an existing key');
    is $v->(), 4, 'the value is the last PUT';
    my $e4 = $r->{headers}{etag};

    # A missing key is 404 before any precondition (RFC 9110 13.2.1), and
    # If-Match: * never creates it.
    for my $h ('*', $stale, $e4) {
        $s->error_is(req($u, PUT => '/api/data/none', json => { value => 1 }, h => { 'If-Match' => $h }),
            'KEY_NOT_FOUND', "PUT on a missing key with If-Match: $h");
        $s->error_is(req($u, DELETE => '/api/data/none', h => { 'If-Match' => $h }),
            'KEY_NOT_FOUND', "DELETE on a missing key with If-Match: $h");
    }
    $s->error_is(req($u, GET => '/api/data/none'), 'KEY_NOT_FOUND', 'still missing');
    # Validation comes first: a bad value with a stale ETag is 400.
    $s->error_is(req($u, PUT => '/api/data/c', json => { value => undef }, h => { 'If-Match' => $stale }),
        'INVALID_VALUE', 'INVALID_VALUE before the precondition');

    answer_is(req($u, DELETE => '/api/data/c', h => { 'If-Match' => $e4 }), 200,
        msg('Data deleted successfully.'), 'DELETE with the current ETag');
    $s->error_is(req($u, GET => '/api/data/c'), 'KEY_NOT_FOUND', 'gone');
    $r = req($u, POST => '/api/data', json => { key => 'c', value => 4 });
    my $e5 = $r->{headers}{etag};
    like $e5, $ETAG_RE, 're-created';
    isnt $e5, $e4, 'a deleted and re-created key has a new ETag, even with the same value';
    $s->error_is(req($u, PUT => '/api/data/c', json => { value => 5 }, h => { 'If-Match' => $e4 }),
        'PRECONDITION_FAILED', 'the ETag from before the delete does not match');
    answer_is(req($u, DELETE => '/api/data/c', h => { 'If-Match' => '*' }), 200,
        msg('Data deleted successfully.'), 'DELETE with If-Match: *');
};

subtest 'the check and the write are one: racing conditional writes' => sub {
    my $u = $s->new_user('race');
    my $rounds = 40;
    my (%tally, @wrong);
    for my $round (1 .. $rounds) {
        my $key = "r$round";
        my $e = req($u, POST => '/api/data', json => { key => $key, value => 0 })->{headers}{etag};
        # The last rounds race a DELETE against the PUT.
        my @ops = $round > $rounds - 10 ? ([ PUT => 1 ], [ DELETE => undef ]) : ([ PUT => 1 ], [ PUT => 2 ]);
        pipe(my $go_r, my $go_w) or die "pipe: $!";
        my @out = in_children(2, sub {
            my ($http, $i) = @_;
            close $go_w;
            call($http, $u, GET => '/api/data');    # connected and warm
            my $t = <$go_r>;                          # everybody waits for EOF
            my ($m, $v) = @{ $ops[$i] };
            my $r = call($http, $u, $m => "/api/data/$key", defined $v ? { value => $v } : undef, { 'If-Match' => $e });
            return "$m $r->{status} " . ($r->{headers}{etag} // '-');
        }, sub { close $go_w });    # all children are waiting: now they see EOF together
        close $go_r;
        my @st = map { (split ' ')[1] } @out;
        my $outcome = join ',', map { join ' ', (split ' ')[0, 1] } @out;
        $tally{$outcome}++;
        my $now = req($u, GET => "/api/data/$key");
        if ($ops[1][0] eq 'PUT') {
            my ($win) = grep { $st[$_] == 200 } 0, 1;
            push @wrong, "round $round: $outcome" unless join(',', sort @st) eq '200,412'
                && $now->{json}{data}{value} == $ops[$win][1]
                && $now->{headers}{etag} eq (split ' ', $out[$win])[2];
        } else {
            # PUT first: DELETE 412; DELETE first: PUT 404 (gone beats stale).
            push @wrong, "round $round: $outcome, then GET $now->{status}"
                unless $outcome eq 'PUT 200,DELETE 412' && $now->{status} == 200
                    || $outcome eq 'PUT 404,DELETE 200' && $now->{status} == 404;
        }
    }
    is_deeply \@wrong, [], "$rounds rounds: exactly one conditional write wins each"
        or diag explain \%tally;
    note join ', ', map {"$_: $tally{$_}"} sort keys %tally;
};

subtest 'GET /api/health follows the database' => sub {
    my $up = { status => 'success', data => { database => 'up' } };
    my $r = $s->request(GET => '/api/health');
    answer_is($r, 200, $up, 'up');
    is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store';
    my $get_length = length $r->{body};
    $r = $s->request(HEAD => '/api/health');
    subtest 'HEAD: the headers of GET, no body' => sub {
        is $r->{status}, 200, 'status 200';
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{'content-length'}, $get_length, "Content-Length of GET's body";
        is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store';
        is $r->{body}, '', 'no body';
    };
    my $u = $s->new_user('health');
    req($u, POST => '/api/data', json => { key => 'kept', value => 'safe' });

    $s->db_down;
    $s->allow_log(qr/database|statement \d+|answered 503/i);
    my $down = { status => 'error', code => 'SERVICE_UNAVAILABLE',
        message => $KVTest::ERRORS{SERVICE_UNAVAILABLE}[1], data => { database => 'down' } };
    # Every worker, not just one: more requests than workers.
    for my $i (1 .. 6) {
        answer_is($s->request(GET => '/api/health'), 503, $down, "database stopped: 503, down ($i)");
    }
    $s->error_is(req($u, GET => '/api/data/kept'), 'SERVICE_UNAVAILABLE', 'a data request: 503');
    $r = $s->request(OPTIONS => '/api/data');
    subtest 'a preflight needs no database' => sub {
        is $r->{status}, 204, 'status 204';
        is $r->{body}, '', 'no body';
        is $r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin';
        is $r->{headers}{'access-control-allow-methods'}, 'GET,HEAD,PUT,PATCH,POST,DELETE',
            'Access-Control-Allow-Methods';
        is $r->{headers}{'access-control-expose-headers'}, 'ETag, Location, Retry-After, WWW-Authenticate',
            'Access-Control-Expose-Headers';
    };

    $s->db_up;
    my ($t0, $ok) = (time, 0);
    while (time - $t0 < 10) {
        $r = $s->request(GET => '/api/health');
        last if $ok = $r->{status} == 200;
        sleep 0.2;
    }
    ok $ok, sprintf 'database started: health is 200 again after %.1f s', time - $t0;
    answer_is($s->request(GET => '/api/health'), 200, $up, 'up') for 1 .. 6;
    answer_is(req($u, GET => '/api/data/kept'), 200, { status => 'success', data => { key => 'kept', value => 'safe' } },
        'the same token reads the data again: the workers reconnected');
};

subtest 'a prefix is text, not a path' => sub {
    # A key may start with dot segments a path could not climb; as a
    # prefix, nginx never resolves them.
    my $u = $s->new_user('dots');
    is req($u, POST => '/api/data', json => { key => '../../..x', value => 1 })->{status}, 201,
        'stored ../../..x';
    answer_is(req($u, GET => '/api/data?prefix=' . enc('../../..')), 200,
        { status => 'success',
          data => { items => [ { key => '../../..x', value => 1 } ], next_cursor => undef } },
        'listed with prefix ../../..');
};

done_testing;
