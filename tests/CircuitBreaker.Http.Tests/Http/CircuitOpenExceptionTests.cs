namespace CircuitBreaker.Http.Tests.Http;

public sealed class CircuitOpenExceptionTests
{
    private static readonly CircuitKey Key = new("users", "http://users.test:80");

    [Fact]
    public void Message_OfAnOpenCircuitWithoutARetryTime_PromisesNoTime()
    {
        // The constructor is public (a test double, a handler of one's own): an unknown time must not read "in  s".
        var exception = new CircuitOpenException(Key, CircuitState.Open, retryAfter: null);

        Assert.Equal("The circuit for http://users.test:80 (client 'users') is open: calls fail fast.", exception.Message);
    }

    [Fact]
    public void Message_OfAnOpenCircuitWithARetryTime_NamesIt()
    {
        var exception = new CircuitOpenException(Key, CircuitState.Open, TimeSpan.FromMilliseconds(1500));

        Assert.Equal("The circuit for http://users.test:80 (client 'users') is open: calls fail fast. It may be tried again in 1.5 s.", exception.Message);
    }
}
