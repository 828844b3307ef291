// An exception in the init context is a script exception (exit 107).
export const options = { iterations: 1 };
throw new Error("broken at init");
export default function () {}
