namespace CircuitBreaker.Http.Tests.Registry;

public sealed class HostKeyTests
{
    [Theory]
    [InlineData("HTTP://Users.TEST/a", "http://users.test:80/b")]
    [InlineData("https://[::FFFF:AB]/", "https://[::ffff:ab]:443/")]
    [InlineData("http://Bücher.EXAMPLE/", "http://xn--BCHER-KVA.example/")]
    public void SameAuthority_SpelledDifferently_IsOneKey(string first, string second)
    {
        var a = new HostKey(new Uri(first));
        var b = new HostKey(new Uri(second));

        Assert.True(a.Equals(b));
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Theory]
    [InlineData("http://users.test/", "https://users.test/")]
    [InlineData("http://users.test/", "http://users.test:8080/")]
    [InlineData("http://users.test/", "http://orders.test/")]
    public void DifferentAuthorities_AreDifferentKeys(string first, string second) =>
        Assert.False(new HostKey(new Uri(first)).Equals(new HostKey(new Uri(second))));
}
