# POST /api/register: the success body, every INVALID_* rule with its limits,
# the fixed validation order, and case-insensitive uniqueness of usernames and
# emails (API.md "Endpoints" and "Validation and errors").
use strict;
use warnings;
use utf8;
use B ();
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is tag);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $CT = 'application/json; charset=utf-8';

my $s = KVTest->start;

my $seq = 0;
sub uniq { $seq++; return sprintf '%s%03d', shift, $seq }

# A valid registration body; override fields, or drop them with undef-valued
# keys listed in `drop`.
sub body {
    my (%o) = @_;
    my $drop = delete $o{drop} || [];
    my $u = uniq('reg_');
    my %b = (
        username  => $u,
        email     => "$u\@example.com",
        password  => 'correct horse',
        full_name => 'Reg User',
        %o,
    );
    delete @b{@$drop};
    return \%b;
}

sub post { $s->request(POST => '/api/register', { json => shift }) }

sub post_raw {
    my ($text) = @_;
    utf8::encode($text);
    return $s->request(POST => '/api/register',
        { headers => { 'Content-Type' => 'application/json' }, body => $text });
}

# Asserts a 201 whose data echoes $b (age/gender null when absent); returns
# the user_id.
sub created {
    my ($r, $b, $name, %exp) = @_;
    my $uid = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH'
        ? $r->{json}{data}{user_id} : undef;
    subtest $name => sub {
        is $r->{status}, 201, 'status 201' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        ok defined $uid && !ref $uid && $uid =~ /\A[1-9][0-9]*\z/,
            'user_id is a decimal string';
        json_is($r, {
            status  => 'success',
            message => 'User successfully registered!',
            data    => {
                user_id   => defined $uid ? "$uid" : 'missing',
                username  => $b->{username},
                email     => $b->{email},
                full_name => $b->{full_name},
                age       => $b->{age},
                gender    => $b->{gender},
                %exp,
            },
        }, 'whole body');
    };
    return $uid;
}

subtest 'success bodies' => sub {
    my $b = body(age => 30, gender => 'male', full_name => 'John Doe');
    my $u1 = created(post($b), $b, 'all fields');

    $b = body();
    my $u2 = created(post($b), $b, 'optional fields absent: age and gender null');

    $b = body(age => undef, gender => undef);
    created(post($b), $b, 'age and gender null count as absent');

    isnt $u1, $u2, 'user ids differ';

    $b = body(username => uniq('MiXeD.Case-'), email => uniq('Some.One') . '@Example.COM');
    created(post($b), $b, 'username and email echoed as sent (case kept)');

    $b = body(full_name => 'Zoë Ünïcødé ☃ 😀', gender => 'non-binary');
    created(post($b), $b, 'unicode full_name and gender');

    $b = body(role => 'admin', is_admin => JSON::PP::true, extra => { a => [1] });
    my $r = post($b);
    delete @$b{qw(role is_admin extra)};
    created($r, $b, 'unknown fields ignored, not echoed');

    my $u = uniq('raw');
    $r = post_raw(qq({"username":"$u","email":"$u\@example.com","password":"correct horse","full_name":"R","age":30.0}));
    created($r, { username => $u, email => "$u\@example.com", full_name => 'R',
                  age => 30, gender => undef }, 'age 30.0 accepted and returned as integer 30');
};

subtest 'INVALID_REQUEST: required fields' => sub {
    for my $f (qw(username email password full_name)) {
        $s->error_is(post(body(drop => [$f])), 'INVALID_REQUEST', "$f missing");
        $s->error_is(post(body($f => undef)), 'INVALID_REQUEST', "$f null");
        $s->error_is(post(body($f => '')), 'INVALID_REQUEST', "$f empty");
        $s->error_is(post(body($f => 12345678)), 'INVALID_REQUEST', "$f a number");
        $s->error_is(post(body($f => JSON::PP::true)), 'INVALID_REQUEST', "$f true");
        $s->error_is(post(body($f => ['abcdefghij'])), 'INVALID_REQUEST', "$f an array");
        $s->error_is(post(body($f => { a => 'abcdefghij' })), 'INVALID_REQUEST', "$f an object");
    }
    $s->error_is(post({}), 'INVALID_REQUEST', 'empty object');
};

subtest 'INVALID_REQUEST: username rules' => sub {
    for my $bad ('ab', 'a' x 65, 'bob smith', 'bob!', 'bób', 'bob/x', ' bob', 'bob ',
                 "bob\n", 'bob@x', 'bo+b', "b\x{0}b") {
        (my $show = $bad) =~ s/([^ -~])/sprintf '\\x{%x}', ord $1/ge;
        $s->error_is(post(body(username => $bad)), 'INVALID_REQUEST',
            "username '$show' rejected");
    }
    my $b = body(username => sprintf('q%02d', $seq++ % 100));
    created(post($b), $b, '3 characters accepted');
    $b = body(username => 'u' x 60 . uniq('_'));
    is length $b->{username}, 64, 'built a 64-character username';
    created(post($b), $b, '64 characters accepted');
    $b = body(username => uniq('Az09_.-'));
    created(post($b), $b, 'every allowed character class accepted');
};

# An email address of exactly $len bytes: unique local part, then domain
# labels of at most 50 characters.
sub email_of_len {
    my ($len) = @_;
    my $local = uniq('e');
    my $need = $len - length($local) - 1 - 4;    # '@' and '.com'
    my @labels;
    while ($need > 0) {
        my $n = $need > 51 ? 50 : $need;          # never leave a 0-char label
        $n = $need - 2 if $need > 50 && $need < 53;
        push @labels, 'd' x $n;
        $need -= $n + 1;                          # the label and its dot
    }
    my $e = $local . '@' . join('.', @labels) . '.com';
    die "email_of_len($len) built " . length($e) unless length $e == $len;
    return $e;
}

subtest 'INVALID_REQUEST: email rules' => sub {
    for my $bad ('no-at-sign.example.com', 'two@@example.com', 'a@b@example.com',
                 '@example.com', 'user@localhost', 'us er@example.com',
                 'user@exa mple.com', "user\t\@example.com", "user\@example.com\n",
                 "us\x{1}er\@example.com", ' user@example.com') {
        (my $show = $bad) =~ s/([^ -~])/sprintf '\\x{%x}', ord $1/ge;
        $s->error_is(post(body(email => $bad)), 'INVALID_REQUEST', "email '$show' rejected");
    }
    $s->error_is(post(body(email => email_of_len(255))), 'INVALID_REQUEST', '255-byte email rejected');
    my $b = body(email => email_of_len(254));
    created(post($b), $b, '254-byte email accepted');
    $b = body(email => uniq('x') . '@b.c');
    created(post($b), $b, 'shortest shape local@d.tld accepted');
};

subtest 'INVALID_REQUEST: full_name rules' => sub {
    $s->error_is(post(body(full_name => 'a' x 129)), 'INVALID_REQUEST', '129 characters rejected');
    $s->error_is(post(body(full_name => '😀' x 129)), 'INVALID_REQUEST', '129 four-byte characters rejected');
    $s->error_is(post(body(full_name => "John\nDoe")), 'INVALID_REQUEST', 'newline rejected');
    $s->error_is(post(body(full_name => "John\x{1}Doe")), 'INVALID_REQUEST', 'U+0001 rejected');
    $s->error_is(post(body(full_name => "John\x{0}Doe")), 'INVALID_REQUEST', 'U+0000 rejected');
    my $b = body(full_name => 'a' x 128);
    created(post($b), $b, '128 characters accepted');
    $b = body(full_name => '😀' x 128);
    created(post($b), $b, '128 four-byte characters (512 bytes) accepted: limit is in characters');
    $b = body(full_name => 'X');
    created(post($b), $b, '1 character accepted');
};

subtest 'INVALID_PASSWORD' => sub {
    my %bad = (
        '7 ASCII characters'                    => 'abcdefg',
        '7 two-byte characters (14 bytes)'      => 'é' x 7,
        '7 three-byte characters (21 bytes)'    => '€' x 7,
        '73 bytes'                              => 'a' x 73,
        '37 two-byte characters (74 bytes)'     => 'é' x 37,
        '1000 bytes'                            => 'a' x 1000,
        '71 ASCII + one two-byte char (73 bytes)' => 'a' x 71 . 'é',
    );
    for my $name (sort keys %bad) {
        $s->error_is(post(body(password => $bad{$name})), 'INVALID_PASSWORD', "$name rejected");
    }
    my %good = (
        '8 ASCII characters'                  => 'abcdefgh',
        '8 two-byte characters'               => 'é' x 8,
        '8 four-byte characters (32 bytes)'   => '😀' x 8,
        '72 bytes'                            => 'a' x 72,
        '36 two-byte characters (72 bytes)'   => 'é' x 36,
        '8 spaces'                            => ' ' x 8,
    );
    for my $name (sort keys %good) {
        my $b = body(password => $good{$name});
        created(post($b), $b, "$name accepted");
    }
};

subtest 'INVALID_AGE' => sub {
    my @bad = (
        [ '30.5',    30.5 ],
        [ '"30"',    '30' ],
        [ '0',       0 ],
        [ '-1',      -1 ],
        [ '151',     151 ],
        [ '1000000', 1000000 ],
        [ 'true',    JSON::PP::true ],
        [ 'false',   JSON::PP::false ],
        [ '[]',      [] ],
        [ '{}',      {} ],
        [ '[30]',    [30] ],
        [ '""',      '' ],
    );
    for (@bad) {
        $s->error_is(post(body(age => $_->[1])), 'INVALID_AGE', "age $_->[0] rejected");
    }
    for my $age (1, 150, 30) {
        my $b = body(age => $age);
        created(post($b), $b, "age $age accepted");
    }
};

subtest 'INVALID_GENDER' => sub {
    my @bad = (
        [ '""',             '' ],
        [ '5',              5 ],
        [ 'true',           JSON::PP::true ],
        [ '[]',             [] ],
        [ '{}',             {} ],
        [ '33 characters',  'g' x 33 ],
        [ 'newline inside', "ma\nle" ],
        [ 'U+0001',         "\x{1}" ],
    );
    for (@bad) {
        $s->error_is(post(body(gender => $_->[1])), 'INVALID_GENDER', "gender $_->[0] rejected");
    }
    for my $g ('g' x 32, 'é' x 32, 'f', 'Genderqueer ☃') {
        my $b = body(gender => $g);
        created(post($b), $b, 'gender of ' . length($g) . ' characters accepted');
    }
};

subtest 'uniqueness' => sub {
    my $name = uniq('Bob_');
    my $mail = uniq('Alice.Smith') . '@Example.COM';
    my $b = body(username => $name, email => $mail);
    created(post($b), $b, 'first registration');

    my ($count) = @{ $s->sql('SELECT COUNT(*) FROM users')->[0] };

    $s->error_is(post(body(username => $name)), 'USERNAME_EXISTS', 'same username again');
    $s->error_is(post(body(username => lc $name)), 'USERNAME_EXISTS', 'lower-case username');
    $s->error_is(post(body(username => uc $name)), 'USERNAME_EXISTS', 'upper-case username');
    $s->error_is(post(body(email => $mail)), 'EMAIL_EXISTS', 'same email again');
    $s->error_is(post(body(email => lc $mail)), 'EMAIL_EXISTS', 'lower-case email');
    $s->error_is(post(body(email => uc $mail)), 'EMAIL_EXISTS', 'upper-case email');
    is $s->sql('SELECT COUNT(*) FROM users')->[0][0], $count, 'no rows added by the refusals';

    my ($uname, $umail) = (uniq('Carol'), uniq('carol') . '@example.com');
    $s->error_is(post(body(username => $uname, email => $umail, password => 'short')),
        'INVALID_PASSWORD', 'a refused registration ...');
    $b = body(username => $uname, email => $umail);
    created(post($b), $b, '... does not reserve the username or email');
};

subtest 'validation order' => sub {
    my $taken = body(username => uniq('taken'), email => uniq('taken') . '@example.com');
    created(post($taken), $taken, 'setup: a registered user');

    $s->error_is(post(body(drop => ['full_name'], password => 'short', age => 0, gender => '',
                           username => $taken->{username}, email => $taken->{email})),
        'INVALID_REQUEST', 'INVALID_REQUEST before INVALID_PASSWORD, AGE, GENDER, EXISTS');
    $s->error_is(post(body(username => 'x', password => 'short')),
        'INVALID_REQUEST', 'bad username before bad password');
    $s->error_is(post(body(email => 'nope', age => 0)),
        'INVALID_REQUEST', 'bad email before bad age');
    $s->error_is(post(body(password => 'short', age => 0, gender => '',
                           username => $taken->{username}, email => $taken->{email})),
        'INVALID_PASSWORD', 'INVALID_PASSWORD before AGE, GENDER, EXISTS');
    $s->error_is(post(body(age => 0, gender => '',
                           username => $taken->{username}, email => $taken->{email})),
        'INVALID_AGE', 'INVALID_AGE before GENDER, EXISTS');
    $s->error_is(post(body(gender => '', username => $taken->{username}, email => $taken->{email})),
        'INVALID_GENDER', 'INVALID_GENDER before EXISTS');
    $s->error_is(post(body(username => $taken->{username}, email => $taken->{email})),
        'USERNAME_EXISTS', 'USERNAME_EXISTS before EMAIL_EXISTS');
    $s->error_is(post(body(email => $taken->{email})),
        'EMAIL_EXISTS', 'EMAIL_EXISTS alone');
};

done_testing;
