import avro from 'avsc';

/** The records of an Avro object container file, and its header's metadata. */
export async function decodeAvro(data: Buffer): Promise<{ records: any[]; codec: string; schema: any }> {
  const decoder = new avro.streams.BlockDecoder();
  const records: any[] = [];
  let meta: { codec: string; schema: any } = { codec: '', schema: undefined };
  decoder.on('metadata', (type: avro.Type, codec: string) => (meta = { codec, schema: type.schema() }));
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('data', (r: any) => records.push(r));
    decoder.on('end', resolve);
    decoder.on('error', reject);
  });
  decoder.end(data);
  await done;
  return { records, ...meta };
}
