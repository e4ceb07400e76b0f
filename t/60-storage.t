# What lands in the database and the logs (API.md "Security", "Data model"):
# only SHA-256 of tokens, bcrypt $2b$ password hashes at the configured cost,
# values stored as GET returns them, uniqueness as a constraint, no secret in
# any log; and the seed's own example requests, word for word.
use strict;
use warnings;
use utf8;
use B ();
use Digest::SHA qw(sha256 sha256_hex);
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag kpath);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';

# Column names of a table, from SHOW CREATE TABLE.
sub columns {
    my ($s, $table) = @_;
    my $ddl = $s->sql("SHOW CREATE TABLE $table")->[0][1];
    return ($ddl, [ $ddl =~ /^\s*`(\w+)`\s/mg ]);
}

# Every cell of a table as hex, one string per row, so binary columns can be
# searched whatever the client does with raw bytes.
sub hex_dump {
    my ($s, $table) = @_;
    my (undef, $cols) = columns($s, $table);
    my $sel = join ', ', map { "IFNULL(HEX(`$_`), 'NULL')" } @$cols;
    return join "\n", map { join '|', map { $_ // 'NULL' } @$_ } @{ $s->sql("SELECT $sel FROM $table") };
}

my $s = KVTest->start;

subtest "the seed's example requests, word for word" => sub {
    my $r = $s->request(POST => '/api/register', { json => {
        username => 'example_user', email => 'user@example.com', password => 'secure_password123',
        full_name => 'John Doe', age => 30, gender => 'male' } });
    is $r->{status}, 201, 'register: 201' or diag $r->{body};
    is $r->{headers}{'content-type'}, $CT, 'Content-Type';
    my $uid = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data}{user_id} : undef;
    ok defined $uid && !ref $uid && $uid =~ /\A[1-9][0-9]*\z/, 'user_id is a decimal string';
    json_is($r, { status => 'success', message => 'User successfully registered!',
                  data => { user_id => defined $uid ? "$uid" : 'missing', username => 'example_user',
                            email => 'user@example.com', full_name => 'John Doe', age => 30, gender => 'male' } },
        'register: the seed\'s success body');
    is_deeply $s->sql("SELECT id FROM users WHERE username = 'example_user'"), [ [ $uid ] ],
        'user_id is the users.id of the row';

    $r = $s->request(POST => '/api/register', { json => {} });
    $s->error_is($r, 'INVALID_REQUEST', "register: the seed's error body");

    $r = $s->request(POST => '/api/token', { json => { username => 'example_user', password => 'secure_password123' } });
    is $r->{status}, 200, 'token: 200' or diag $r->{body};
    my $tok = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data}{access_token} : undef;
    ok defined $tok && $tok =~ /\A[A-Za-z0-9_-]{43}\z/, 'access_token shape';
    json_is($r, { status => 'success', message => 'Access token generated successfully.',
                  data => KVTest::token_data($r) },
        'token: the seed\'s success body (+ token_type)');
    my $auth = $s->auth($tok // 'none');

    $r = $s->request(POST => '/api/data', { headers => $auth, json => { key => 'unique_key', value => 'data_value' } });
    is $r->{status}, 201, 'store: 201' or diag $r->{body};
    is $r->{headers}{location}, '/api/data/unique_key', 'store: Location';
    json_is($r, { status => 'success', message => 'Data stored successfully.' }, 'store: the seed\'s body');

    $r = $s->request(GET => '/api/data/unique_key', { headers => $auth });
    is $r->{status}, 200, 'retrieve: 200';
    json_is($r, { status => 'success', data => { key => 'unique_key', value => 'data_value' } }, 'retrieve: the seed\'s body');

    $r = $s->request(PUT => '/api/data/unique_key', { headers => $auth, json => { value => 'new_data_value' } });
    is $r->{status}, 200, 'update: 200';
    json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'update: the seed\'s body');

    $r = $s->request(GET => '/api/data/unique_key', { headers => $auth });
    json_is($r, { status => 'success', data => { key => 'unique_key', value => 'new_data_value' } }, 'retrieve after update');

    $r = $s->request(DELETE => '/api/data/unique_key', { headers => $auth });
    is $r->{status}, 200, 'delete: 200';
    json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'delete: the seed\'s body');

    for my $m (qw(GET PUT DELETE)) {
        $r = $s->request($m => '/api/data/unique_key',
            { headers => $auth, $m eq 'PUT' ? (json => { value => 'new_data_value' }) : () });
        $s->error_is($r, 'KEY_NOT_FOUND', "$m after delete: the seed's error body");
    }
};

subtest 'tables are InnoDB, data is unique per user and key' => sub {
    for my $t (qw(users tokens data)) {
        my ($ddl) = columns($s, $t);
        like $ddl, qr/ENGINE=InnoDB/i, "$t is InnoDB";
    }
    my ($ddl) = columns($s, 'data');
    like $ddl, qr/(?:PRIMARY KEY|UNIQUE KEY `\w+`)\s*\(`user_id`,\s*`k`\)/, 'data: a unique key over (user_id, k)';
};

subtest 'tokens are stored only as SHA-256' => sub {
    my ($ddl, $cols) = columns($s, 'tokens');
    like $ddl, qr/`token_hash`\s+binary\(32\)/i, 'tokens.token_hash is BINARY(32)';
    my $u = $s->new_user('hash');
    my $r = $s->request(POST => '/api/token', { json => { username => $u->{username}, password => $u->{password} } });
    is $r->{status}, 200, 'a second token' or diag $r->{body};
    my @toks = ($u->{token}, $r->{json}{data}{access_token});

    my $plain = join "\n", map { join '|', map { $_ // 'NULL' } @$_ } @{ $s->sql('SELECT * FROM tokens') };
    my $hexed = hex_dump($s, 'tokens');
    for my $i (0, 1) {
        my $t = $toks[$i];
        (my $b64 = $t) =~ tr{-_}{+/};
        my $raw = decode_base64($b64 . '=');
        is length $raw, 32, "token $i: 32 random bytes";
        my $std = encode_base64($raw, '');
        for ([ 'the token', $t ], [ 'its standard base64', $std ], [ 'its raw bytes (hex)', unpack('H*', $raw) ]) {
            my ($what, $needle) = @$_;
            ok index(lc $plain, lc $needle) < 0, "token $i: $what not in SELECT * FROM tokens";
            ok index(lc $hexed, lc unpack('H*', $needle)) < 0, "token $i: $what not in the bytes of any column";
        }
        ok index(uc $hexed, uc unpack('H*', $raw)) < 0, "token $i: raw bytes not stored";
        is_deeply $s->sql("SELECT HEX(token_hash), user_id FROM tokens WHERE token_hash = UNHEX(SHA2('$t', 256))"),
            [ [ uc sha256_hex($t), $u->{user_id} ] ], "token $i: one row, keyed by HEX(SHA2(token)), for this user";
        is_deeply $s->sql("SELECT TIMESTAMPDIFF(SECOND, created_at, expires_at) FROM tokens WHERE token_hash = UNHEX(SHA2('$t', 256))"),
            [ [ 3600 ] ], "token $i: expires 3600 s after creation";
    }
    is $s->sql("SELECT COUNT(*) FROM tokens WHERE user_id = $u->{user_id}")->[0][0], 2, 'two rows for two tokens';
};

subtest 'passwords are bcrypt $2b$ at the configured cost' => sub {
    my $pw = 'Pl41n-T3xt-Pa55word';
    my @ids;
    for my $n (1, 2) {
        my $r = $s->register(username => "pw_user$n", email => "pw$n\@example.com", password => $pw,
                             full_name => 'Pw User');
        is $r->{status}, 201, "user $n registered" or diag $r->{body};
        push @ids, $r->{json}{data}{user_id};
    }
    my $rows = $s->sql("SELECT password_hash FROM users WHERE username IN ('pw_user1', 'pw_user2') ORDER BY id");
    like $rows->[0][0], qr/\A\$2b\$04\$[.\/A-Za-z0-9]{53}\z/, 'cost 4 in the test stack: $2b$04$';
    like $rows->[1][0], qr/\A\$2b\$04\$[.\/A-Za-z0-9]{53}\z/, 'second user too';
    isnt $rows->[0][0], $rows->[1][0], 'same password, different salt, different hash';
    my $users = join "\n", map { join '|', map { $_ // 'NULL' } @$_ } @{ $s->sql('SELECT * FROM users') };
    ok index($users, $pw) < 0, 'no plaintext password in SELECT * FROM users';
    ok index(hex_dump($s, 'users'), uc unpack('H*', $pw)) < 0, 'nor in the bytes of any column';

    my $s12 = KVTest->start(bcrypt_cost => 12);
    my $r = $s12->register(username => 'cost12', email => 'cost12@example.com', password => $pw, full_name => 'C');
    is $r->{status}, 201, 'registered at bcrypt_cost 12' or diag $r->{body};
    like $s12->sql("SELECT password_hash FROM users WHERE username = 'cost12'")->[0][0],
        qr/\A\$2b\$12\$[.\/A-Za-z0-9]{53}\z/, 'bcrypt_cost => 12 gives $2b$12$';
    $r = $s12->request(POST => '/api/token', { json => { username => 'cost12', password => $pw } });
    is $r->{status}, 200, 'and the password checks' or diag $r->{body};
    $s12->stop;
};

subtest 'users rows hold what was registered' => sub {
    my $r = $s->register(username => 'Row_User', email => 'Row.User@Example.COM', password => 'row password',
                         full_name => 'Rów Üser ☃', age => 42, gender => 'female');
    is $r->{status}, 201, 'registered' or diag $r->{body};
    my $id = $r->{json}{data}{user_id};
    my $row = $s->sql("SELECT HEX(username), HEX(email), HEX(full_name), age, HEX(gender) FROM users WHERE id = $id")->[0];
    my $h = sub { my $x = shift; utf8::encode($x); uc unpack 'H*', $x };
    is_deeply $row, [ $h->('Row_User'), $h->('Row.User@Example.COM'), $h->('Rów Üser ☃'), 42, $h->('female') ],
        'username, email (as sent), full_name (UTF-8), age, gender';
    $r = $s->register(username => 'Row_User2', email => 'row2@example.com', password => 'row password', full_name => 'R');
    $id = $r->{json}{data}{user_id};
    is_deeply $s->sql("SELECT age, gender FROM users WHERE id = $id"), [ [ undef, undef ] ], 'absent age and gender are NULL';
};

subtest 'stored values are what GET returns' => sub {
    my $u = $s->new_user('store');
    my @cases = (
        [ 'plain',   'string' ],
        [ 'ключ/☃ ?#%', { nested => [ 1, 2.5, JSON::PP::true, undef, 'ü' ], e => {} } ],
        [ 'n',       -12.75 ],
        [ 'b',       JSON::PP::false ],
        [ 'arr',     [] ],
    );
    for (@cases) {
        my ($key, $value) = @$_;
        my $r = $s->request(POST => '/api/data', { headers => $s->auth($u->{token}), json => { key => $key, value => $value } });
        is $r->{status}, 201, "POST $key" or diag $r->{body};
        $r = $s->request(GET => kpath($key), { headers => $s->auth($u->{token}) });
        json_is($r, { status => 'success', data => { key => $key, value => $value } }, "GET $key");
        my $got = eval { JSON::PP->new->utf8->allow_nonref->decode($r->{body})->{data}{value} };
        (my $kb = $key) =~ s/'/''/g;
        utf8::encode($kb);
        my $rows = $s->sql("SELECT HEX(v) FROM data WHERE user_id = $u->{user_id} AND k = UNHEX('" . unpack('H*', $kb) . "')");
        is scalar @$rows, 1, "one row for $key, its k the key's UTF-8 bytes";
        my $stored = @$rows ? eval { JSON::PP->new->utf8->allow_nonref->decode(pack 'H*', $rows->[0][0]) } : undef;
        is_deeply tag($stored), tag($got), "data.v of $key is the JSON GET returns";
    }
    my $r = $s->request(PUT => '/api/data/plain', { headers => $s->auth($u->{token}), json => { value => [ 'updated' ] } });
    is $r->{status}, 200, 'PUT plain';
    my $v = $s->sql("SELECT HEX(v) FROM data WHERE user_id = $u->{user_id} AND k = 'plain'")->[0][0];
    is_deeply tag(JSON::PP->new->utf8->allow_nonref->decode(pack 'H*', $v)), tag([ 'updated' ]), 'PUT reached the row';
    $r = $s->request(DELETE => '/api/data/plain', { headers => $s->auth($u->{token}) });
    is $r->{status}, 200, 'DELETE plain';
    is $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id} AND k = 'plain'")->[0][0], 0, 'the row is gone';
};

subtest 'concurrent creates of one key: one 201, the rest 409' => sub {
    my $u = $s->new_user('race');
    my $n = 8;
    my @kids;
    for my $i (1 .. $n) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my $r = eval { $s->request(POST => '/api/data',
                { headers => $s->auth($u->{token}), json => { key => 'race', value => $i } }) };
            print {$wr} $r ? $r->{status} : 'died';
            close $wr;
            POSIX::_exit(0);    # no END blocks: the stack belongs to the parent
        }
        close $wr;
        push @kids, [ $pid, $rd ];
    }
    my %count;
    for (@kids) {
        my ($pid, $rd) = @$_;
        local $/;
        my $st = <$rd> // 'none';
        waitpid $pid, 0;
        $count{$st}++;
    }
    is_deeply \%count, { 201 => 1, 409 => $n - 1 }, "$n parallel POSTs: one 201, " . ($n - 1) . ' 409s';
    is $s->sql("SELECT COUNT(*) FROM data WHERE user_id = $u->{user_id} AND k = 'race'")->[0][0], 1, 'one row';
};

# Secrets the stack $st sees (passwords sent, accepted and refused, a
# token, the database password) reach none of the logs it writes, read
# once the workers, nginx and (with $stop_db) MariaDB are stopped, so that
# everything they would write is on disk.
sub no_secret_logged {
    my ($st, $stop_db) = @_;
    my $pw = 'Never-Log-Me-4471';
    my $wrong = 'Wrong-Never-Log-5582';
    my $refused = 'Refused-Never-Log-6693';
    my $r = $st->register(username => 'logcheck', email => 'logcheck@example.com', password => $pw, full_name => 'L');
    is $r->{status}, 201, 'registered' or diag $r->{body};
    $r = $st->request(POST => '/api/token', { json => { username => 'logcheck', password => $pw } });
    is $r->{status}, 200, 'token' or diag $r->{body};
    my $tok = $r->{json}{data}{access_token} // 'none';
    $r = $st->request(POST => '/api/token', { json => { username => 'logcheck', password => $wrong } });
    $st->error_is($r, 'INVALID_CREDENTIALS', 'wrong password refused');
    $r = $st->register(username => 'logcheck2', email => 'logcheck2@example.com', password => $refused,
                       full_name => 'L', age => 0);
    $st->error_is($r, 'INVALID_AGE', 'refused registration');
    $r = $st->request(POST => '/api/register', { headers => { 'Content-Type' => 'application/json' },
        body => qq({"username":"logcheck3","password":"$refused","password":"$refused"}) });
    $st->error_is($r, 'INVALID_JSON', 'invalid body holding a password');
    $r = $st->request(GET => '/api/data/nothing', { headers => $st->auth($tok) });
    $st->error_is($r, 'KEY_NOT_FOUND', 'a data request with the token');
    $r = $st->request(GET => '/api/data/nothing', { headers => { Authorization => "Bearer ${tok}x" } });
    $st->error_is($r, 'INVALID_TOKEN', 'a bad token');

    $st->app_down;
    $st->db_down if $stop_db;
    my $logs = $st->logs;
    my %size = map { ((split m{/}, $_)[-1] => length $logs->{$_}) } keys %$logs;
    for my $f (qw(kvapi.log nginx-error.log nginx-access.log mariadb.log)) {
        ok $size{$f}, "$f is written and searched";
    }
    my %secret = ('the password' => $pw, 'a wrong password' => $wrong,
        'the password of a refused registration' => $refused, 'the access token' => $tok,
        'the database password' => $st->db_password);
    for my $what (sort keys %secret) {
        my @in = grep { index($logs->{$_}, $secret{$what}) >= 0 } sort keys %$logs;
        is_deeply \@in, [], "$what is in no log" or diag "found in @in";
    }
}

subtest 'no password or token in any log, at log level info' => sub {
    no_secret_logged($s);
};

subtest 'nor at log level debug' => sub {
    # A database of its own, which can be stopped so that its log is
    # complete too.
    my $dbg = KVTest->start(log_level => 'debug', private_db => 1);
    no_secret_logged($dbg, 1);
    $dbg->stop;
};

done_testing;
