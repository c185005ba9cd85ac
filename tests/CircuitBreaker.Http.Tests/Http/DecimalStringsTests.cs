namespace CircuitBreaker.Http.Tests.Http;

public sealed class DecimalStringsTests
{
    [Theory]
    [InlineData(0, "0")]
    [InlineData(503, "503")]
    [InlineData(4095, "4095")]
    [InlineData(4096, "4096")]
    [InlineData(86_400, "86400")]
    [InlineData(-1, "-1")]
    public void Of_WritesTheInvariantDecimalForm(long value, string expected) =>
        Assert.Equal(expected, DecimalStrings.Of(value));

    [Fact]
    public void Of_SmallValue_IsTheSameStringEveryTime() =>
        Assert.Same(DecimalStrings.Of(3599), DecimalStrings.Of(3599));
}
