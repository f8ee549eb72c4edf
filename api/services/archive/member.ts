/** One file inside an archive, as the streaming readers hand it out. */
export type ArchiveMember = {
  /** Path inside the archive, `/`-separated (`cat/001.png`). */
  name: string;
  /** Uncompressed size the archive declares (zip central directory, tar header). */
  size: number;
  /**
   * The member's uncompressed bytes, chunk by chunk. Valid only until the next member is requested;
   * a body that is not consumed (or only partly) is skipped. Throws `ArchiveError` when the member
   * is corrupt (CRC, truncation, more bytes than declared).
   */
  body: () => AsyncIterable<Uint8Array>;
};
