namespace CircuitBreaker.Http.Tests.Circuit;

public sealed class CircuitKeyTests
{
    [Fact]
    public void ToString_OfTheDefaultKey_IsEmptyNotNull()
    {
        // The key of an exception made with a standard constructor (new CircuitOpenException("...")) is the default one.
        Assert.Equal(string.Empty, default(CircuitKey).ToString());
        Assert.Equal(string.Empty, new CircuitOpenException("broken").CircuitKey.ToString());
    }

    [Theory]
    [InlineData("users", "http://users.test:80", "http://users.test:80 (client 'users')")]
    [InlineData("", "http://users.test:80", "http://users.test:80")]
    public void ToString_NamesTheAuthorityAndTheClient(string client, string authority, string expected) =>
        Assert.Equal(expected, new CircuitKey(client, authority).ToString());
}
