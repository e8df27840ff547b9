// Integration suites stream tens of thousands of events through real servers.
jest.setTimeout(300_000);
